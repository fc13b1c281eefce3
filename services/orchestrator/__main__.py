"""Start an orchestrator replica: `python -m services.orchestrator` (settings from the environment, see
shared/config.py). SIGINT/SIGTERM stop it cleanly: running tasks are cancelled, their analyzers told to stop and
their requests handed back to JetStream for another replica."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from services.orchestrator.service import serve
from shared.config import load_settings
from shared.connection import connect
from shared.logs import setup_logging
from shared.tracing import setup_tracing

SERVICE = "orchestrator"
log = logging.getLogger("services.orchestrator")


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
        try:
            await serve(nc, settings, stop)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.drain(), 5)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 5)
        log.info("orchestrator stopped")
        return 0
    finally:
        provider.shutdown()  # flushes the spans still queued


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
