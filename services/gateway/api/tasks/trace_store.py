"""A task's trace from a trace store's Jaeger-compatible query API (`ASSAY_TRACE_QUERY_URL`), as span records.

With an OTLP endpoint configured no span file is written: the spans are in the collector's store. Jaeger's query
API (`GET <url>/api/traces/<trace_id>`, also served by Jaeger-compatible stores) answers
`{"data": [{"spans": [...], "processes": {...}}]}` with times in microseconds; this turns it into the same
`SpanRecord`s the span files give, so the trace route and page read both alike.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from shared.operations.errors import AssayError
from shared.operations.redact import masked_url
from shared.telemetry.span_files import SpanLink, SpanRecord

QUERY_TIMEOUT_S = 10.0


class TraceStoreUnavailable(AssayError):
    """The trace store did not answer, or answered something that is not a Jaeger trace."""


class _Tag(msgspec.Struct, frozen=True):
    key: str
    value: Any = None


# Jaeger spells its ids `traceID`, `spanID`, `processID` and every other field in camel case.
class _Reference(msgspec.Struct, frozen=True, rename="camel"):
    ref_type: str
    span_id: str = msgspec.field(name="spanID")
    trace_id: str = msgspec.field(default="", name="traceID")


class _Span(msgspec.Struct, frozen=True, rename="camel"):
    trace_id: str = msgspec.field(name="traceID")
    span_id: str = msgspec.field(name="spanID")
    operation_name: str
    start_time: int  # microseconds since the epoch
    duration: int  # microseconds
    process_id: str = msgspec.field(default="", name="processID")
    references: list[_Reference] = []
    tags: list[_Tag] = []


class _Process(msgspec.Struct, frozen=True, rename="camel"):
    service_name: str


class _Trace(msgspec.Struct, frozen=True):
    spans: list[_Span]
    processes: dict[str, _Process] = {}


class _Answer(msgspec.Struct, frozen=True):
    data: list[_Trace] | None = None


def _record(span: _Span, processes: dict[str, _Process]) -> SpanRecord:
    tags = {tag.key: tag.value for tag in span.tags}
    parent = next((ref.span_id for ref in span.references if ref.ref_type == "CHILD_OF"), None)
    failed = tags.pop("error", False) is True or tags.get("otel.status_code") == "ERROR"
    process = processes.get(span.process_id)
    start_ns = span.start_time * 1000
    return SpanRecord(
        trace_id=span.trace_id.rjust(32, "0"),  # Jaeger drops leading zeros
        span_id=span.span_id.rjust(16, "0"),
        parent_span_id=parent.rjust(16, "0") if parent else None,
        name=span.operation_name,
        kind=str(tags.pop("span.kind", "internal")).upper(),
        service=process.service_name if process else "?",
        start_ns=start_ns,
        end_ns=start_ns + span.duration * 1000,
        status="ERROR" if failed else str(tags.get("otel.status_code") or "UNSET"),
        attributes=tags,
        # Jaeger keeps an OpenTelemetry link as a FOLLOWS_FROM reference (without the link's attributes).
        links=[
            SpanLink(trace_id=ref.trace_id.rjust(32, "0"), span_id=ref.span_id.rjust(16, "0"))
            for ref in span.references
            if ref.ref_type == "FOLLOWS_FROM" and ref.trace_id
        ],
    )


async def query_trace(base_url: str, trace_id: str) -> list[SpanRecord]:
    """The spans of `trace_id` in the store at `base_url`; none when the store does not know the trace (404)."""
    where = masked_url(base_url)
    try:
        async with httpx.AsyncClient(timeout=QUERY_TIMEOUT_S) as client:
            response = await client.get(f"{base_url}/api/traces/{trace_id}")
    except httpx.HTTPError as error:
        raise TraceStoreUnavailable(f"trace store at {where} did not answer: {error!r}") from error
    if response.status_code == 404:
        return []
    if response.status_code != 200:
        raise TraceStoreUnavailable(f"trace store at {where} answered {response.status_code}")
    try:
        answer = msgspec.json.decode(response.content, type=_Answer)
    except msgspec.DecodeError as error:
        raise TraceStoreUnavailable(f"trace store at {where} answered no Jaeger trace: {error}") from error
    return [_record(span, trace.processes) for trace in answer.data or [] for span in trace.spans]
