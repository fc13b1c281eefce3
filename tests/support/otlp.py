"""A small OTLP/HTTP receiver for tests: it accepts protobuf exports on `/v1/traces` and `/v1/metrics`, decodes
them with opentelemetry-proto and keeps what it received, as a collector would before storing it; like Jaeger, it
answers `GET /api/traces/<trace_id>` with a stored trace in Jaeger's query JSON (for ASSAY_TRACE_QUERY_URL)."""

from __future__ import annotations

import gzip
import json
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


def attribute(value: AnyValue) -> object:
    """The Python value of one OTLP attribute value."""
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def attributes(pairs: list[KeyValue]) -> dict[str, object]:
    return {pair.key: attribute(pair.value) for pair in pairs}


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    attributes: dict[str, object]
    kind: str = "internal"  # as Jaeger's `span.kind` tag says it
    start_ns: int = 0
    end_ns: int = 0
    status: str = "UNSET"  # UNSET, OK or ERROR


@dataclass
class Received:
    """What the receiver decoded: spans, and every metric export by service (cumulative, so the last one counts)."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    metrics: dict[str, list[Metric]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_traces(self, request: ExportTraceServiceRequest) -> None:
        with self.lock:
            for resource_spans in request.resource_spans:
                service = str(attributes(list(resource_spans.resource.attributes)).get("service.name"))
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            ReceivedSpan(
                                service=service,
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_span_id=span.parent_span_id.hex() or None,
                                name=span.name,
                                attributes=attributes(list(span.attributes)),
                                kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_").lower(),
                                start_ns=span.start_time_unix_nano,
                                end_ns=span.end_time_unix_nano,
                                status=Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
                            )
                        )

    def add_metrics(self, request: ExportMetricsServiceRequest) -> None:
        with self.lock:
            for resource_metrics in request.resource_metrics:
                service = str(attributes(list(resource_metrics.resource.attributes)).get("service.name"))
                for scope_metrics in resource_metrics.scope_metrics:
                    self.metrics[service].extend(scope_metrics.metrics)

    def jaeger_trace(self, trace_id: str) -> dict[str, object] | None:
        """The stored spans of `trace_id` as Jaeger's query API answers them (times in microseconds)."""
        with self.lock:
            spans = [span for span in self.spans if span.trace_id == trace_id]
        if not spans:
            return None
        processes = {service: f"p{index}" for index, service in enumerate(sorted({s.service for s in spans}))}
        return {
            "data": [
                {
                    "traceID": trace_id,
                    "spans": [_jaeger_span(span, processes[span.service]) for span in spans],
                    "processes": {
                        pid: {"serviceName": service, "tags": []} for service, pid in processes.items()
                    },
                }
            ]
        }

    def last_metric(self, service: str, name: str) -> Metric | None:
        """The latest export of metric `name` by `service` (cumulative temporality: it holds every count)."""
        with self.lock:
            found = [metric for metric in self.metrics[service] if metric.name == name]
        return found[-1] if found else None


def _jaeger_span(span: ReceivedSpan, process_id: str) -> dict[str, object]:
    tags: dict[str, object] = {**span.attributes, "span.kind": span.kind}
    if span.status != "UNSET":
        tags["otel.status_code"] = span.status
    if span.status == "ERROR":
        tags["error"] = True
    return {
        "traceID": span.trace_id,
        "spanID": span.span_id,
        "operationName": span.name,
        "references": (
            [{"refType": "CHILD_OF", "traceID": span.trace_id, "spanID": span.parent_span_id}]
            if span.parent_span_id
            else []
        ),
        "startTime": span.start_ns // 1000,
        "duration": (span.end_ns - span.start_ns) // 1000,
        "processID": process_id,
        "tags": [{"key": key, "value": value} for key, value in tags.items()],
    }


class OtlpReceiver:
    """`start()` listens on a free loopback port; `endpoint` is what OTEL_EXPORTER_OTLP_ENDPOINT should say."""

    def __init__(self) -> None:
        self.received = Received()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    received.add_traces(ExportTraceServiceRequest.FromString(body))
                    answer = ExportTraceServiceResponse().SerializeToString()
                elif self.path == "/v1/metrics":
                    received.add_metrics(ExportMetricsServiceRequest.FromString(body))
                    answer = ExportMetricsServiceResponse().SerializeToString()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                prefix = "/api/traces/"
                found = (
                    received.jaeger_trace(self.path[len(prefix) :]) if self.path.startswith(prefix) else None
                )
                if found is None:
                    self.send_error(404)
                    return
                answer = json.dumps(found).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                return None  # quiet: pytest shows failures, not every export

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
