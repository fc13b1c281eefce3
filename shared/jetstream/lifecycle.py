"""Running a NATS-connected service process: settings, JSON logs, tracing, signals, and a clean stop.

The orchestrator and the persister start the same way; each hands over only the coroutine that does its work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

from nats.aio.client import Client

from shared.jetstream.connection import connect
from shared.operations.config import Settings, load_settings
from shared.operations.logs import setup_logging
from shared.store.file_modes import keep_files_private
from shared.telemetry.metrics import metrics_listener, setup_metrics
from shared.telemetry.tracing import setup_tracing

ServiceBody = Callable[[Client, Settings, asyncio.Event], Awaitable[None]]

log = logging.getLogger(__name__)


async def _main(name: str, body: ServiceBody, database: bool) -> int:
    settings = load_settings()
    keep_files_private(settings, database=database)
    setup_logging(name, settings.log_level)
    provider = setup_tracing(name, settings.trace_dir)
    meters = setup_metrics(name)
    try:
        if not settings.nats_url:
            log.error("ASSAY_NATS_URL is not set: start Assay with `assay up`, or point it at a NATS server")
            return 2
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        nc = await connect(settings.nats_url, name, settings.nats_creds)
        try:
            async with metrics_listener(settings.metrics_host, settings.metrics_port):
                await body(nc, settings, stop)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.drain(), 5)  # flushes what is still buffered, then closes
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 5)
        log.info("%s stopped", name)
        return 0
    finally:
        provider.shutdown()  # flushes the spans still queued
        meters.shutdown()  # and the last metrics, when they go over OTLP


def run_service(name: str, body: ServiceBody, *, database: bool) -> int:
    """Run `body(nc, settings, stop)` until SIGINT/SIGTERM sets `stop`; the process's exit code. `database`: the
    service opens the database (its SQLite file is narrowed at start)."""
    return asyncio.run(_main(name, body, database))
