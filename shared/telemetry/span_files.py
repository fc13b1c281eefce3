"""Reading the local span files: `<trace_dir>/<service>-<pid>.jsonl`, one JSON object per span (shared/telemetry/tracing).

The gateway serves a task's spans from them (`GET /api/tasks/{task_id}/trace`) and `assay trace --dir` reads
them directly; both find a task's trace by the id its task row records, or by the `assay.task_id` attribute.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from shared.telemetry.tracing import TASK_ID_ATTRIBUTE


class SpanLink(msgspec.Struct, frozen=True, kw_only=True):
    """A span of another trace (or another span of this one) that a span names, and why (its attributes)."""

    trace_id: str
    span_id: str
    attributes: dict[str, Any] = {}


class SpanRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One finished span as the files (and the trace route) give it; ids are lowercase hex."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    status: str
    attributes: dict[str, Any] = {}
    links: list[SpanLink] = []

    @property
    def duration_ms(self) -> float:
        return max(self.end_ns - self.start_ns, 0) / 1e6


def span_files(trace_dir: Path) -> list[Path]:
    return sorted(trace_dir.glob("*.jsonl")) if trace_dir.is_dir() else []


def read_records(files: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Every span record in the files; a line cut short by a process still writing is skipped."""
    for file in files:
        with file.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and record.get("trace_id") and record.get("span_id"):
                    yield record


def trace_ids_of_task(files: Iterable[Path], task_id: str) -> list[str]:
    """Trace ids of the spans that carry `assay.task_id == task_id`, earliest first."""
    first_seen: dict[str, int] = {}
    for record in read_records(files):
        if (record.get("attributes") or {}).get(TASK_ID_ATTRIBUTE) == task_id:
            start = int(record.get("start_ns") or 0)
            first_seen[record["trace_id"]] = min(start, first_seen.get(record["trace_id"], start))
    return sorted(first_seen, key=first_seen.__getitem__)


def _links(value: Any) -> list[SpanLink]:
    """The links of a span record; none when a file written before links were recorded, or damaged, has none."""
    try:
        return msgspec.convert(value or [], list[SpanLink])
    except msgspec.ValidationError:
        return []


def spans_of_traces(files: Iterable[Path], trace_ids: Iterable[str]) -> dict[str, list[SpanRecord]]:
    """The spans of each trace, each span once (a file may be read while its writer appends)."""
    wanted = set(trace_ids)
    found: dict[str, dict[str, SpanRecord]] = defaultdict(dict)
    for record in read_records(files):
        if record["trace_id"] not in wanted:
            continue
        start = int(record.get("start_ns") or 0)
        attributes = record.get("attributes")
        found[record["trace_id"]][record["span_id"]] = SpanRecord(
            trace_id=record["trace_id"],
            span_id=record["span_id"],
            parent_span_id=record.get("parent_span_id"),
            name=str(record.get("name", "?")),
            kind=str(record.get("kind", "?")),
            service=str(record.get("service") or "?"),
            start_ns=start,
            end_ns=int(record.get("end_ns") or start),
            status=str(record.get("status", "UNSET")),
            attributes=attributes if isinstance(attributes, dict) else {},
            links=_links(record.get("links")),
        )
    return {trace_id: list(spans.values()) for trace_id, spans in found.items()}
