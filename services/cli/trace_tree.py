"""`assay trace <task_id>`: a task's spans from the local span files, printed as a tree.

Each service appends its finished spans to `<trace_dir>/<service>-<pid>.jsonl` (shared/tracing). The task's
trace is found through the `assay.task_id` attribute its spans carry; children are indented under their parent
and ordered by start; a span whose parent is in no file is listed at the top level, marked `(orphan)`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.tracing import TASK_ID_ATTRIBUTE


@dataclass(frozen=True)
class SpanLine:
    """The fields of one span record the tree needs."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    status: str

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


def spans_of_traces(files: Iterable[Path], trace_ids: Iterable[str]) -> dict[str, list[SpanLine]]:
    """The spans of each trace, each span once (a file may be read while its writer appends)."""
    wanted = set(trace_ids)
    found: dict[str, dict[str, SpanLine]] = defaultdict(dict)
    for record in read_records(files):
        if record["trace_id"] not in wanted:
            continue
        start = int(record.get("start_ns") or 0)
        found[record["trace_id"]][record["span_id"]] = SpanLine(
            trace_id=record["trace_id"],
            span_id=record["span_id"],
            parent_span_id=record.get("parent_span_id"),
            name=str(record.get("name", "?")),
            kind=str(record.get("kind", "?")),
            service=str(record.get("service") or "?"),
            start_ns=start,
            end_ns=int(record.get("end_ns") or start),
            status=str(record.get("status", "UNSET")),
        )
    return {trace_id: list(spans.values()) for trace_id, spans in found.items()}


def render_tree(spans: list[SpanLine]) -> list[str]:
    """One line per span: `name  [service]  KIND  12.3 ms`, two spaces of indent per level."""
    known = {span.span_id for span in spans}
    children: dict[str, list[SpanLine]] = defaultdict(list)
    top: list[SpanLine] = []
    for span in spans:
        if span.parent_span_id and span.parent_span_id in known:
            children[span.parent_span_id].append(span)
        else:
            top.append(span)
    lines: list[str] = []
    # Depth-first, iteratively: a deep trace must not hit the recursion limit.
    stack = [(span, 0) for span in sorted(top, key=lambda s: s.start_ns, reverse=True)]
    while stack:
        span, depth = stack.pop()
        marks = ""
        if span.status == "ERROR":
            marks += "  ERROR"
        if depth == 0 and span.parent_span_id:
            marks += "  (orphan)"
        lines.append(
            f"{'  ' * depth}{span.name}  [{span.service}]  {span.kind}  {span.duration_ms:.1f} ms{marks}"
        )
        for child in sorted(children[span.span_id], key=lambda s: s.start_ns, reverse=True):
            stack.append((child, depth + 1))
    return lines


def render_traces(traces: dict[str, list[SpanLine]]) -> str:
    """Every trace with a header line: id, span count, services."""
    blocks = []
    for trace_id, spans in traces.items():
        services = sorted({span.service for span in spans})
        header = f"trace {trace_id}: {len(spans)} spans across {', '.join(services)}"
        blocks.append("\n".join([header, *render_tree(spans)]))
    return "\n\n".join(blocks)
