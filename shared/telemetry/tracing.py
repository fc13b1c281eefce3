"""OpenTelemetry setup and W3C trace-context propagation across NATS headers and WebSocket frames.

With an OTLP endpoint in the standard `OTEL_EXPORTER_OTLP_*` variables, spans go there. Without one they go to
`<trace_dir>/<service>-<pid>.jsonl`, one JSON object per span, which `assay trace <task_id>` renders as a tree.
Exporting runs on the batch processor's thread, never on the event loop.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.operations.redact import redacted_bytes

_propagator = TraceContextTextMapPropagator()

TASK_ID_ATTRIBUTE = "assay.task_id"
BATCH_ID_ATTRIBUTE = "assay.batch_id"
_encoder = msgspec.json.Encoder(
    enc_hook=str
)  # UTF-8 JSON; a value JSON has no form for is written as its str()


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans to a JSON-lines file (the local default when no collector is configured)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # msgspec: about a tenth of the CPU of json.dumps, and this runs for every span of every service.
        # A span names URLs now and then (an error's message): never with their password (shared/operations/redact.py).
        lines = [redacted_bytes(_encoder.encode(span_record(span))) + b"\n" for span in spans]
        with self._lock, self._path.open("ab") as handle:
            handle.writelines(lines)
            handle.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def span_record(span: ReadableSpan) -> dict[str, object]:
    """The fields `assay trace` needs, with ids as lowercase hex like every trace explorer shows them."""
    context = span.context  # always set on a finished SDK span
    parent = span.parent
    return {
        "trace_id": format(context.trace_id, "032x") if context else None,
        "span_id": format(context.span_id, "016x") if context else None,
        "parent_span_id": format(parent.span_id, "016x") if parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": span.resource.attributes.get("service.name"),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        # Links name spans of other traces (a batch task's trace links to its batch's request).
        "links": [
            {
                "trace_id": format(link.context.trace_id, "032x"),
                "span_id": format(link.context.span_id, "016x"),
                "attributes": dict(link.attributes or {}),
            }
            for link in span.links
        ],
    }


def _otlp_configured(env: Mapping[str, str]) -> bool:
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def setup_tracing(service: str, trace_dir: Path, env: Mapping[str, str] | None = None) -> TracerProvider:
    """Install the global tracer provider for `service`; call `provider.shutdown()` before exiting to flush."""
    env = os.environ if env is None else env
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if env.get("OTEL_TRACES_EXPORTER", "").lower() == "none":
        exporter: SpanExporter | None = None
    elif _otlp_configured(env):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        exporter = JsonLinesSpanExporter(trace_dir / f"{service}-{os.getpid()}.jsonl")
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    return provider


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Headers carrying the current span's `traceparent` (for NATS messages)."""
    carrier = dict(headers or {})
    _propagator.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, str] | None) -> otel_context.Context:
    """The remote parent carried in NATS headers (an empty context when there is none)."""
    return _propagator.extract(dict(headers or {}))


def current_traceparent() -> str | None:
    """The current span as a W3C `traceparent` value (for WebSocket frames)."""
    return inject_headers().get("traceparent")


def context_from_traceparent(traceparent: str | None) -> otel_context.Context:
    return extract_context({"traceparent": traceparent} if traceparent else None)


def trace_id_of(headers: Mapping[str, str] | None) -> str | None:
    """The trace id of a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<flags>`), if valid."""
    parts = (headers or {}).get("traceparent", "").split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or set(parts[1]) == {"0"}:
        return None
    try:
        int(parts[1], 16)
    except ValueError:
        return None
    return parts[1].lower()


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
