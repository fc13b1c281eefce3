"""Assay's metrics: the OpenTelemetry instruments every service records into, and how they leave the process.

`setup_metrics(service)` installs the meter provider: always a Prometheus reader (the text format that
`prometheus_text()` renders for a `/metrics` endpoint) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the metrics
one) is set, a periodic OTLP/HTTP export as well. Names and units follow the OpenTelemetry semantic conventions
where one exists (`http.server.request.duration`, `db.client.operation.duration`, `messaging.*` attributes);
the rest are `assay.*`. Each `record_*` function is the one call an edge of a service makes; without a provider
(a test in one process, a tool) they record into the API's no-op meter.

Gauges of state outside the process (a consumer's pending count, the DLQ's size) are polled by `watch_jetstream`
and read by the export, never computed on a scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from nats.js import JetStreamContext
from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import REGISTRY, generate_latest

from shared.wire import subjects

log = logging.getLogger(__name__)

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
SIZE_BUCKETS = (256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
POLL_INTERVAL_S = 10.0
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})

_meter = metrics.get_meter("assay")


def _seconds_histogram(name: str, description: str) -> metrics.Histogram:
    return _meter.create_histogram(
        name, unit="s", description=description, explicit_bucket_boundaries_advisory=SECONDS_BUCKETS
    )


_http_duration = _seconds_histogram(
    "http.server.request.duration", "Duration of HTTP requests the gateway served"
)
_tasks_accepted = _meter.create_counter(
    "assay.tasks.accepted", unit="{task}", description="Analysis requests the gateway accepted (202)"
)
_tasks_ended = _meter.create_counter(
    "assay.tasks.ended", unit="{task}", description="Tasks that reached a terminal status (recorded once)"
)
_task_duration = _seconds_histogram("assay.task.duration", "From a task's acceptance to its terminal status")
_service_duration = _seconds_histogram(
    "assay.service.duration", "One analyzer's run of one task, as the orchestrator saw it"
)
_tool_duration = _seconds_histogram(
    "assay.tool.duration", "One tool run inside an analyzer, waiting for a CPU slot included"
)
_db_duration = _seconds_histogram(
    "db.client.operation.duration", "One database write of the persister (its transaction included)"
)
_batch_size = _meter.create_histogram(
    "messaging.batch.message_count",
    unit="{message}",
    description="Messages one fetch of a pull consumer returned",
    explicit_bucket_boundaries_advisory=BATCH_BUCKETS,
)
_payload_size = _meter.create_histogram(
    "messaging.message.body.size",
    unit="By",
    description="Body size of each message a consumer fetched",
    explicit_bucket_boundaries_advisory=SIZE_BUCKETS,
)


class _Gauges:
    """Last observed values of one gauge, by attribute set; the export reads them."""

    def __init__(self) -> None:
        self.values: dict[tuple[tuple[str, str], ...], float] = {}

    def set(self, value: float, attributes: Mapping[str, str]) -> None:
        self.values[tuple(sorted(attributes.items()))] = value

    def observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, dict(key)) for key, value in list(self.values.items())]


def _gauge(name: str, description: str, unit: str = "{message}") -> _Gauges:
    """An observable gauge whose values `_Gauges.set` keeps."""
    gauges = _Gauges()
    _meter.create_observable_gauge(name, [gauges.observe], unit=unit, description=description)
    return gauges


_replicas = _gauge(
    "assay.analyzer.replicas.healthy",
    "Replicas of each analyzer that answered the last health check",
    "{replica}",
)
_pending = _gauge("assay.consumer.pending", "Messages of a durable consumer not delivered yet (its lag)")
_ack_pending = _gauge(
    "assay.consumer.ack_pending", "Messages delivered to a durable consumer and not settled yet"
)
_redelivered = _gauge(
    "assay.consumer.redelivered",
    "Messages of a durable consumer delivered more than once and not settled yet",
)
_dlq = _gauge("assay.dead_letters", "Dead letters kept on ASSAY_DLQ")


def _otlp_metrics_configured(env: Mapping[str, str]) -> bool:
    if env.get("OTEL_METRICS_EXPORTER", "").lower() == "none":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))


def setup_metrics(service: str, env: Mapping[str, str] | None = None) -> MeterProvider:
    """Install the global meter provider for `service`; call `provider.shutdown()` before exiting to flush."""
    env = os.environ if env is None else env
    readers: list[MetricReader] = [PrometheusMetricReader()]
    if _otlp_metrics_configured(env):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        # The interval comes from OTEL_METRIC_EXPORT_INTERVAL (milliseconds, 60 s by default).
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    provider = MeterProvider(metric_readers=readers, resource=Resource.create({"service.name": service}))
    metrics.set_meter_provider(provider)
    return provider


def prometheus_text() -> bytes:
    """Every instrument of this process in the Prometheus text format (what `/metrics` answers)."""
    return generate_latest(REGISTRY)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One HTTP/1.0-style exchange: `GET /metrics` gets the text format, anything else a 404; then close."""
    try:
        async with asyncio.timeout(5):
            request_line = await reader.readline()
            while (await reader.readline()).strip():  # the headers, unused
                pass
        method, _, rest = request_line.decode("latin-1").partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        if method == "GET" and path == "/metrics":
            body = await asyncio.to_thread(prometheus_text)
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {PROMETHEUS_CONTENT_TYPE}\r\n"
        else:
            body = b"only GET /metrics is served here\n"
            head = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
        writer.write(f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        await writer.drain()
    except (TimeoutError, ConnectionError, ValueError):
        pass  # a slow or broken client gets nothing; the next scrape is another connection
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def metrics_listener(host: str, port: int | None) -> AsyncIterator[None]:
    """Answer Prometheus scrapes of `GET /metrics` on `host:port` while inside; no listener when `port` is None."""
    if port is None:
        yield
        return
    try:
        server = await asyncio.start_server(_answer, host, port)
    except OSError as error:
        # The service's work matters more than its metrics: go on without the listener, and say so loudly.
        log.error(
            "no /metrics listener on %s:%d (%s): free the port or set ASSAY_METRICS_PORT(_BASE)",
            host,
            port,
            error,
        )
        yield
        return
    log.info("metrics on http://%s:%d/metrics", host, port)
    try:
        yield
    finally:
        server.close()


def record_http_request(method: str, route: str, status: int, duration_s: float) -> None:
    """One HTTP request served, by route template; a request that matched no route ("" here) has no `http.route`,
    so raw paths (ids, probes for random URLs) never become series of their own."""
    attributes: dict[str, str | int] = {
        "http.request.method": method if method in HTTP_METHODS else "_OTHER",
        "http.response.status_code": status,
    }
    if route:
        attributes["http.route"] = route
    _http_duration.record(duration_s, attributes)


def record_task_accepted(analysis_type: str) -> None:
    _tasks_accepted.add(1, {"assay.analysis_type": analysis_type})


def record_task_ended(analysis_type: str, status: str, duration_s: float) -> None:
    """A task's terminal status was recorded (the persister calls this once per task)."""
    attributes = {"assay.analysis_type": analysis_type, "assay.task.status": status}
    _tasks_ended.add(1, attributes)
    _task_duration.record(max(0.0, duration_s), attributes)


def record_service_run(service: str, status: str, duration_s: float) -> None:
    _service_duration.record(duration_s, {"assay.service": service, "assay.service.status": status})


def record_tool_run(tool: str, status: str, duration_s: float) -> None:
    _tool_duration.record(duration_s, {"assay.tool": tool, "assay.tool.status": status})


@contextlib.contextmanager
def timed_db_write(db_system: str, what: str) -> Iterator[None]:
    """Time one database write (`with timed_db_write(...)`), recorded whether it succeeds or raises."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        yield
    finally:
        _db_duration.record(
            loop.time() - started,
            {"db.system.name": db_system, "db.operation.name": "write", "assay.write": what},
        )


def record_fetch(durable: str, bodies: Sequence[bytes]) -> None:
    """One fetch of a pull consumer: how many messages it returned and each one's size."""
    attributes = {"messaging.system": "nats", "messaging.consumer.group.name": durable}
    _batch_size.record(len(bodies), attributes)
    for body in bodies:
        _payload_size.record(len(body), attributes)


def record_replicas_healthy(service: str, healthy: int) -> None:
    _replicas.set(healthy, {"assay.service": service})


@dataclass(frozen=True)
class Watched:
    """A durable consumer whose lag `watch_jetstream` polls."""

    stream: str
    durable: str


async def poll_jetstream(js: JetStreamContext, consumers: Sequence[Watched], dlq: bool) -> None:
    """Read each consumer's pending and redelivered counts (and the DLQ's size) once into the gauges."""
    for watched in consumers:
        info = await js.consumer_info(watched.stream, watched.durable)
        attributes = {
            "messaging.system": "nats",
            "messaging.destination.name": watched.stream,
            "messaging.consumer.group.name": watched.durable,
        }
        _pending.set(info.num_pending or 0, attributes)
        _ack_pending.set(info.num_ack_pending or 0, attributes)
        _redelivered.set(info.num_redelivered or 0, attributes)
    if dlq:
        state = (await js.stream_info(subjects.DLQ_STREAM)).state
        _dlq.set(state.messages, {"messaging.destination.name": subjects.DLQ_STREAM})


async def watch_jetstream(
    js: JetStreamContext,
    consumers: Sequence[Watched],
    stop: asyncio.Event,
    *,
    dlq: bool = False,
    interval_s: float = POLL_INTERVAL_S,
) -> None:
    """Poll `poll_jetstream` every `interval_s` until `stop` is set; a failed poll keeps the last values."""
    while not stop.is_set():
        try:
            await poll_jetstream(js, consumers, dlq)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - NATS down or a consumer not declared yet: try again later
            log.warning("could not read consumer state for the metrics: %s", error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
