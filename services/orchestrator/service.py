"""The orchestrator as one running thing: declare what it uses on NATS, wire its parts, consume until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from nats.aio.client import Client

from services.orchestrator.analyzer_client import AnalyzerClient
from services.orchestrator.analyzer_connections import AnalyzerConnections
from services.orchestrator.apps.runner import AppRunner
from services.orchestrator.cancellation import CancelRegistry, listen
from services.orchestrator.consumer import Orchestrator, declare, flow
from services.orchestrator.outages import Outages
from services.orchestrator.publisher import EventPublisher
from services.orchestrator.replicas import ReplicaChooser, watch_replicas
from services.orchestrator.runner import RunContext
from shared.jetstream.consuming import consume
from shared.jetstream.streams import tasks_bucket
from shared.operations.config import Settings
from shared.telemetry.metrics import Watched, watch_jetstream
from shared.wire import subjects
from shared.wire.messages import PRIORITIES

log = logging.getLogger(__name__)

PULSE_S = 30.0


def worker_name() -> str:
    """This replica as the `started` event names it: hostname:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def serve(nc: Client, settings: Settings, stop: asyncio.Event, worker: str | None = None) -> None:
    """Run one orchestrator replica on `nc` until `stop` is set; running tasks are then cancelled and nak'd."""
    js = nc.jetstream()
    await declare(js, settings)
    registry = CancelRegistry()
    cancels = await listen(nc, registry)
    connections = AnalyzerConnections(settings.analyzer_token)
    outages = Outages(
        ReplicaChooser(token=settings.analyzer_token, connections=connections), settings.analyzer_outage_s
    )
    run = RunContext(
        publisher=EventPublisher(nc, js, settings.jetstream),
        analyzers=AnalyzerClient(settings.analyzer_urls, settings.heartbeat_timeout_s, outages, connections),
        worker=worker or worker_name(),
        # Well inside the persister's stale-task limit, whatever it is set to.
        pulse_s=min(PULSE_S, settings.stale_task_s / 3),
        apps=AppRunner(settings),
    )
    orchestrator = Orchestrator(
        js=js, settings=settings, tasks=await tasks_bucket(js, settings.jetstream), registry=registry, run=run
    )
    log.info(
        "orchestrator %s running up to %d tasks at once",
        run.worker,
        settings.tasks_per_orchestrator,
    )
    durables = [Watched(subjects.REQUESTS_STREAM, subjects.orchestrator_durable(p)) for p in PRIORITIES]
    watchers = [
        asyncio.create_task(watch_jetstream(js, durables, stop), name="metrics"),
        asyncio.create_task(
            watch_replicas(settings.analyzer_urls, settings.analyzer_token, stop), name="replicas"
        ),
    ]
    try:
        await consume(flow(orchestrator), stop)
    finally:
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        await outages.close()
        with contextlib.suppress(Exception):
            await cancels.unsubscribe()
        await connections.close()
