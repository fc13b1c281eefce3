"""Start the persister: `python -m services.persister` (settings from the environment, see shared/config.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from services.persister.service import run
from shared.config import load_settings
from shared.connection import connect
from shared.database import create_engine
from shared.logs import setup_logging
from shared.tracing import setup_tracing

SERVICE = "persister"
log = logging.getLogger("services.persister")


async def main() -> int:
    settings = load_settings()
    setup_logging(SERVICE, settings.log_level)
    provider = setup_tracing(SERVICE, settings.trace_dir)
    try:
        if not settings.nats_url:
            log.error("ASSAY_NATS_URL is not set: start Assay with `assay up`, or point it at a NATS server")
            return 2
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        nc = await connect(settings.nats_url, SERVICE)
        engine = create_engine(settings.database_url)
        try:
            await run(nc, engine, settings, stop)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 5)
            await engine.dispose()
        log.info("persister stopped")
        return 0
    finally:
        provider.shutdown()  # flushes the spans still queued


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
