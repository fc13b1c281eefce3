"""The one client of the analyzer protocol v1 (shared/wire/protocol.py): one run of one analyzer, start to terminal frame.

A run ends in exactly one way: the analyzer's `result` (returned), its `error`, silence longer than the heartbeat
timeout, a connection lost twice, or an outage of the analyzer longer than ASSAY_ANALYZER_OUTAGE_S (raised as
AnalyzerFailed). While no replica is healthy the run waits for one (services/orchestrator/outages.py). A connection
lost mid-run is retried once, and a run an analyzer hands back because it is shutting down (`shutting_down`) is
run again as often as that happens, each time on another replica when there is one, with the same request id: the
analyzer base replaces a run it already has under that id, and only the one result that ends the retry is
returned, so findings are never counted twice. When the caller cancels (a cancel request, the task deadline,
shutdown) the analyzer is sent `cancel`, and its answer is awaited briefly: a `result` (status `cancelled`, the
tools that had finished) goes to the caller's `on_stopped` before the cancellation goes on. Runs travel on the
replica's persistent connection, shared with the other runs and the health requests
(services/orchestrator/analyzer_connections.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from urllib.parse import urlsplit

import msgspec
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from services.orchestrator.analyzer_connections import AnalyzerConnection, AnalyzerConnections, Inbox
from services.orchestrator.outages import AnalyzerOutage, Outages
from shared.operations.errors import AssayError
from shared.operations.redact import masked_url
from shared.telemetry.tracing import TASK_ID_ATTRIBUTE, current_traceparent
from shared.wire.protocol import (
    AnalyzeFrame,
    CancelFrame,
    ErrorFrame,
    HealthReport,
    HeartbeatFrame,
    ProgressFrame,
    ResultFrame,
    ServiceResult,
    ShuttingDownFrame,
)

log = logging.getLogger(__name__)
tracer = trace.get_tracer("services.orchestrator")

CANCEL_SEND_TIMEOUT_S = 1.0
CANCEL_ANSWER_TIMEOUT_S = 5.0  # how long a cancelled run's answer (the finished tools' results) is awaited

OnProgress = Callable[[ProgressFrame], Awaitable[None]]
OnStopped = Callable[[ServiceResult], None]


class AnalyzerFailed(AssayError):
    """The run ended without a result; the message says why, for the service event and the task's reason."""


class _ConnectionLost(Exception):
    """The connection could not be opened or dropped before a terminal frame: worth one retry."""


class _HandedBack(Exception):
    """The analyzer is shutting down and gave the run back (`shutting_down`): run it elsewhere, not a failure."""


def request_id(task_id: str, service: str) -> str:
    """The id of a task's run on one analyzer; the same on a retry, so the analyzer treats it as the same run."""
    return f"{task_id}:{service}"


class AnalyzerClient:
    """Runs analyzers by service name over the replica URLs of each (shared.operations.config `analyzer_urls`)."""

    def __init__(
        self,
        urls: Mapping[str, Sequence[str]],
        heartbeat_timeout_s: float,
        replicas: Outages,
        connections: AnalyzerConnections,
    ) -> None:
        self.urls = urls
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.replicas = replicas  # chooses a healthy replica, waiting out an outage
        self.connections = connections  # one persistent connection per replica, shared by all runs

    def down(self, services: Sequence[str]) -> bool:
        """Whether any of `services` is in an outage now (no healthy replica)."""
        return any(self.replicas.down(service) for service in services)

    async def available(self, services: Sequence[str]) -> None:
        """Wait until none of `services` is in an outage; AnalyzerFailed past ASSAY_ANALYZER_OUTAGE_S."""
        try:
            await self.replicas.available(services)
        except AnalyzerOutage as error:
            raise AnalyzerFailed(str(error)) from error

    async def analyze(
        self, service: str, frame: AnalyzeFrame, on_progress: OnProgress, on_stopped: OnStopped | None = None
    ) -> ServiceResult:
        """Run `frame` on a healthy replica of `service`; the analyzer's result, or AnalyzerFailed. Cancelled, it
        hands what the analyzer kept of the stopped run to `on_stopped` (when it answers in time) and re-raises."""
        urls = list(self.urls.get(service, ()))
        extra = {"task_id": frame.task.id, "analyzer": service}
        avoid: list[str] = []
        lost: str | None = None  # the first connection lost, when one was
        while True:
            try:
                url = await self.replicas.replica(service, urls, avoid)
            except AnalyzerOutage as error:
                raise AnalyzerFailed(f"{lost}; {error}" if lost else str(error)) from error
            try:
                return await self._attempt(service, url, frame, on_progress, on_stopped)
            except _HandedBack as back:
                log.info(
                    "analyzer %s at %s: %s; running it again", service, masked_url(url), back, extra=extra
                )
            except _ConnectionLost as error:
                if lost is not None:
                    raise AnalyzerFailed(f"{lost}; the retry at {url} lost it too ({error})") from error
                log.warning(
                    "analyzer %s at %s: %s; retrying once", service, masked_url(url), error, extra=extra
                )
                lost = f"connection to the {service} analyzer at {url} lost ({error})"
            avoid = [url]

    async def _attempt(
        self,
        service: str,
        url: str,
        frame: AnalyzeFrame,
        on_progress: OnProgress,
        on_stopped: OnStopped | None,
    ) -> ServiceResult:
        """One connection, in a CLIENT span whose traceparent the analyzer continues."""
        attributes: dict[str, str | int] = {
            "rpc.system": "websocket",
            "rpc.service": service,
            "server.address": urlsplit(url).hostname or url,
            TASK_ID_ATTRIBUTE: frame.task.id,
        }
        port = urlsplit(url).port
        if port:
            attributes["server.port"] = port
        with tracer.start_as_current_span(
            f"analyze {service}", kind=SpanKind.CLIENT, attributes=attributes, record_exception=False
        ) as span:
            sent = msgspec.structs.replace(frame, traceparent=current_traceparent())
            try:
                connection = await self.connections.get(url)
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as error:
                span.set_status(Status(StatusCode.ERROR, f"connect failed: {error!r}"))
                raise _ConnectionLost(f"could not connect: {error!r}") from error
            inbox = connection.listen(sent.id)
            try:
                await connection.send(sent)
                result = await self._read(inbox, connection, service, sent, on_progress)
            except (ConnectionClosed, _ConnectionLost) as error:
                lost = connection.lost or str(error)
                span.set_status(Status(StatusCode.ERROR, f"connection closed: {lost}"))
                raise _ConnectionLost(f"connection closed before a result: {lost}") from error
            except AnalyzerFailed as error:
                span.set_status(Status(StatusCode.ERROR, str(error)))
                await _send_cancel(connection, sent.id)
                raise
            except asyncio.CancelledError:
                # Cancel request, deadline or shutdown: the analyzer stops its tools now, not when it notices.
                await _send_cancel(connection, sent.id)
                span.set_status(Status(StatusCode.ERROR, "cancelled"))
                if on_stopped is not None:
                    kept = await self._stopped_answer(inbox, connection, service, sent)
                    if kept is not None:
                        on_stopped(kept)
                raise
            finally:
                connection.forget(sent.id)
            span.set_attribute("assay.findings", len(result.findings))
            span.set_attribute("assay.service_status", result.status)
            return result

    async def _stopped_answer(
        self, inbox: Inbox, connection: AnalyzerConnection, service: str, sent: AnalyzeFrame
    ) -> ServiceResult | None:
        """The result a cancelled run ends with, if the analyzer sends one soon; None otherwise."""

        async def ignore(_: ProgressFrame) -> None:
            pass

        try:
            async with asyncio.timeout(CANCEL_ANSWER_TIMEOUT_S):
                return await self._read(inbox, connection, service, sent, ignore)
        except (TimeoutError, AnalyzerFailed, _ConnectionLost, _HandedBack):
            return None

    async def _read(
        self,
        inbox: Inbox,
        connection: AnalyzerConnection,
        service: str,
        sent: AnalyzeFrame,
        on_progress: OnProgress,
    ) -> ServiceResult:
        """The run's frames until the terminal one; each proves the analyzer alive. The silence timeout counts
        this run's frames only (another run's on the same connection prove nothing about this one)."""
        while True:
            try:
                async with asyncio.timeout(self.heartbeat_timeout_s):
                    frame = await inbox.get()
            except TimeoutError:
                raise AnalyzerFailed(
                    f"analyzer {service} sent nothing for {self.heartbeat_timeout_s:g} s"
                ) from None
            if frame is None:
                raise _ConnectionLost(connection.lost)
            if isinstance(frame, HealthReport):
                continue  # an answer to a health request that reused the run's id: not part of the run
            if isinstance(frame, ResultFrame):
                return frame.result
            if isinstance(frame, ErrorFrame):
                raise AnalyzerFailed(f"analyzer {service} answered {frame.code}: {frame.message}")
            if isinstance(frame, ShuttingDownFrame):
                raise _HandedBack(frame.message)
            if isinstance(frame, ProgressFrame):
                await on_progress(frame)
            elif isinstance(frame, HeartbeatFrame):
                pass  # its arrival has reset the silence timeout


async def _send_cancel(connection: AnalyzerConnection, run_id: str) -> None:
    """Best effort: a connection already gone has stopped the run on the analyzer's side anyway."""
    try:
        await asyncio.wait_for(connection.send(CancelFrame(id=run_id)), CANCEL_SEND_TIMEOUT_S)
    except (ConnectionClosed, TimeoutError, OSError):
        pass
