"""Start the gateway: `python -m services.gateway` serves the HTTP API where ASSAY_GATEWAY_URL says."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

import uvicorn

from services.gateway.app import create_app
from shared.operations.config import load_settings
from shared.operations.logs import setup_logging
from shared.store.file_modes import keep_files_private
from shared.telemetry.metrics import setup_metrics
from shared.telemetry.tracing import setup_tracing

log = logging.getLogger(__name__)


class GatewayServer(uvicorn.Server):
    """uvicorn, minus its habit of re-raising SIGTERM/SIGINT after a graceful stop: that would end the process
    before the tracer provider flushes its last spans."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


def main() -> None:
    settings = load_settings()
    keep_files_private(settings, database=True)
    setup_logging("gateway", settings.log_level)
    provider = setup_tracing("gateway", settings.trace_dir)
    meters = setup_metrics("gateway")
    address = urlparse(settings.gateway_url)
    config = uvicorn.Config(
        create_app(settings),
        host=address.hostname or "127.0.0.1",
        port=address.port or 8000,
        log_config=None,  # keep the JSON logging set up above
        lifespan="on",
        # Open SSE streams would otherwise hold a stopping gateway up until their tasks end.
        timeout_graceful_shutdown=5,
    )
    server = GatewayServer(config)
    try:
        asyncio.run(server.serve())
    finally:
        provider.shutdown()
        meters.shutdown()
    if not server.started:
        # The lifespan failed (NATS or the database refused): say so with the exit code; `assay up` restarts it.
        log.error("gateway did not start")
        sys.exit(1)
    log.info("gateway stopped")


if __name__ == "__main__":
    main()
