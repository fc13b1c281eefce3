"""Choosing an analyzer replica: ask each candidate for its health, take a healthy one with the fewest active runs.

Among equally busy replicas the choice turns round-robin, so that a burst of tasks spreads over all of them
instead of landing on the first URL of the list. A replica that accepts the connection but is slow to report is
only a last resort, taken when no replica answered in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Mapping, Sequence

import msgspec
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from services.orchestrator.analyzer_connections import AnalyzerConnections
from shared.operations.errors import AssayError
from shared.operations.redact import masked_url
from shared.telemetry.metrics import record_replicas_healthy
from shared.wire.protocol import (
    PROTOCOL_VERSION,
    HealthFrame,
    HealthReport,
    analyzer_auth,
    decode_analyzer_frame,
    encode_frame,
)

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 15.0  # how often the orchestrator counts healthy replicas for the metrics
# answers come in milliseconds, but an analyzer's first one may wait on tool `--version`s
HEALTH_TIMEOUT_S = 3.0


class NoHealthyReplica(AssayError):
    """No candidate could take the run: none answered as the analyzer it should be, none even accepted a connection."""


class ReplicaHealth(msgspec.Struct, frozen=True):
    """What asking one replica for its health showed: its report, or that it only accepted the connection."""

    url: str
    report: HealthReport | None  # None: connected, but no answer within the timeout (busy, not broken)


class _Slow(Exception):
    """Connected, but no health report within the timeout."""


async def _report_on_own_connection(
    url: str, request_id: str, timeout_s: float, token: str | None
) -> HealthReport:
    """Ask on a connection opened for the question; raises what connecting raises, ConnectionClosed or _Slow."""
    websocket = await connect(
        url, open_timeout=timeout_s, close_timeout=0.5, additional_headers=analyzer_auth(token)
    )
    try:
        async with asyncio.timeout(timeout_s):
            await websocket.send(encode_frame(HealthFrame(id=request_id)))
            while True:
                try:
                    frame = decode_analyzer_frame(await websocket.recv())
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue  # not an answer to us; the timeout bounds the wait
                if isinstance(frame, HealthReport) and frame.id in (request_id, None):
                    return frame
    except TimeoutError:
        raise _Slow from None
    finally:
        with contextlib.suppress(Exception):
            await websocket.close()


async def _report_on(
    connections: AnalyzerConnections, url: str, request_id: str, timeout_s: float
) -> HealthReport:
    """Ask on the replica's persistent connection; raises what connecting raises, ConnectionClosed or _Slow."""
    connection = await connections.get(url)
    inbox = connection.listen(request_id)
    try:
        async with asyncio.timeout(timeout_s):
            await connection.send(HealthFrame(id=request_id))
            while True:
                frame = await inbox.get()
                if frame is None:
                    raise ConnectionClosed(None, None)
                if isinstance(frame, HealthReport):
                    return frame
    except TimeoutError:
        raise _Slow from None
    finally:
        connection.forget(request_id)


async def ask_health(
    url: str,
    service: str,
    timeout_s: float = HEALTH_TIMEOUT_S,
    token: str | None = None,
    connections: AnalyzerConnections | None = None,
) -> ReplicaHealth | None:
    """Ask the replica at `url` for its health (on its persistent connection when `connections` are given, else
    on one of its own); None when it is unreachable or is not the `service` analyzer."""
    request_id = f"health:{secrets.token_hex(4)}"
    try:
        if connections is None:
            frame = await _report_on_own_connection(url, request_id, timeout_s, token)
        else:
            frame = await _report_on(connections, url, request_id, timeout_s)
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as error:
        log.warning("%s analyzer at %s is unreachable: %r", service, masked_url(url), error)
        return None
    except _Slow:
        log.warning(
            "%s analyzer at %s took over %g s to answer a health request", service, masked_url(url), timeout_s
        )
        return ReplicaHealth(url, None)
    except ConnectionClosed as error:
        log.warning(
            "%s analyzer at %s closed the connection of a health request: %s", service, masked_url(url), error
        )
        return None
    if frame.service != service or frame.protocol != PROTOCOL_VERSION:
        log.warning(
            "replica at %s is the %s analyzer speaking protocol %d, not %s with protocol %d",
            url,
            frame.service,
            frame.protocol,
            service,
            PROTOCOL_VERSION,
        )
        return None
    return ReplicaHealth(url, frame)


def draining(found: ReplicaHealth) -> bool:
    """Whether the replica said it is stopping (it finishes its runs but takes no new one)."""
    return found.report is not None and found.report.draining


class ReplicaChooser:
    """Picks a replica per run; keeps only the round-robin position of each service."""

    def __init__(
        self,
        health_timeout_s: float = HEALTH_TIMEOUT_S,
        token: str | None = None,
        connections: AnalyzerConnections | None = None,
    ) -> None:
        self.health_timeout_s = health_timeout_s
        self.token = token  # the analyzers' handshake token
        self.connections = connections  # the runs' persistent connections, asked on when given
        self._turns: dict[str, int] = {}

    async def choose(self, service: str, urls: Sequence[str], avoid: Sequence[str] = ()) -> str:
        """A replica of `service` among `urls`, preferring those not in `avoid`.

        Replicas that answered come first, the one with the fewest active runs; only when none answered in time is
        one that merely accepted the connection taken (slow to report is not broken). When every URL is to be
        avoided they are all asked again: with one replica, a retry can only go back to it (it may have restarted).
        Raises NoHealthyReplica.
        """
        candidates = [url for url in urls if url not in avoid] or list(urls)
        if not candidates:
            raise NoHealthyReplica(f"no {service} analyzer is configured (ASSAY_{service.upper()}_URLS)")
        probes = await asyncio.gather(
            *(
                ask_health(url, service, self.health_timeout_s, self.token, self.connections)
                for url in candidates
            )
        )
        # A draining replica answers but takes no new run: it is not a candidate at all.
        reached = [found for found in probes if found is not None and not draining(found)]
        answered = [found for found in reached if found.report is not None]
        if len(candidates) == len(urls):  # every replica was asked: the gauge can say how many are healthy
            record_replicas_healthy(service, len(answered))
        if answered:
            fewest = min(found.report.active_runs for found in answered if found.report)
            tied = [found.url for found in answered if found.report and found.report.active_runs == fewest]
        else:
            tied = [found.url for found in reached]
        if not tied:
            raise NoHealthyReplica(f"no healthy {service} analyzer at {', '.join(candidates)}")
        turn = self._turns.get(service, 0)
        self._turns[service] = turn + 1
        return tied[turn % len(tied)]


async def watch_replicas(
    analyzer_urls: Mapping[str, Sequence[str]],
    token: str | None,
    stop: asyncio.Event,
    interval_s: float = WATCH_INTERVAL_S,
) -> None:
    """Ask every configured replica for its health every `interval_s` and keep the count that answered in the
    `assay.analyzer.replicas.healthy` gauge, until `stop` is set."""
    while not stop.is_set():
        for service, urls in analyzer_urls.items():
            probes = await asyncio.gather(*(ask_health(url, service, token=token) for url in urls))
            healthy = [found for found in probes if found and found.report and not draining(found)]
            record_replicas_healthy(service, len(healthy))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
