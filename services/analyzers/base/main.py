"""Starting an analyzer service: settings, logs, tracing, the WebSocket server, and a clean stop on signals."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from urllib.parse import urlparse

from websockets.asyncio.server import serve

from services.analyzers.base.analyzer import Analyzer
from services.analyzers.base.handshake import require_token
from services.analyzers.base.server import AnalyzerServer
from shared.operations.config import Settings, load_settings
from shared.operations.logs import setup_logging
from shared.store.file_modes import keep_files_private
from shared.telemetry.metrics import metrics_listener, setup_metrics
from shared.telemetry.tracing import setup_tracing
from shared.wire.protocol import MAX_REQUEST_FRAME_BYTES

log = logging.getLogger(__name__)


def listen_address(service: str, settings: Settings, argv: list[str] | None) -> tuple[str, int]:
    """`--host/--port` when given, else the host and port of the service's first configured URL."""
    parser = argparse.ArgumentParser(prog=f"python -m services.analyzers.{service}")
    first = urlparse(settings.analyzer_urls[service][0])
    # Loopback unless told otherwise: an analyzer runs tools and sends load on request.
    parser.add_argument("--host", default=first.hostname or "127.0.0.1")
    parser.add_argument("--port", type=int, default=first.port)
    args = parser.parse_args(argv)
    return args.host, args.port


async def serve_analyzer(
    analyzer: Analyzer, settings: Settings, host: str, port: int, stop: asyncio.Event
) -> None:
    """Serve until `stop` is set, then drain: runs may finish within the grace period, the rest are stopped (their
    tools killed) and handed back to the orchestrator."""
    admit = require_token(settings.analyzer_token)  # before anything else: no token, no analyzer
    server = AnalyzerServer(analyzer, settings)
    # Ask every tool its health (versions) before listening, so the first health request answers at once and no
    # `--version` process is still running when the first analysis starts.
    await server.health()
    # Requests are small: a frame above MAX_REQUEST_FRAME_BYTES closes the connection (1009) before it is read.
    async with serve(
        server.handle,
        host,
        port,
        max_size=MAX_REQUEST_FRAME_BYTES,
        process_request=admit,
        ping_interval=20,
        ping_timeout=20,
    ):
        log.info("%s analyzer listening on ws://%s:%d", analyzer.service, host, port)
        await stop.wait()
        await server.drain(settings.analyzer_grace_s)


def run_analyzer(analyzer: Analyzer, argv: list[str] | None = None) -> None:
    """Entry point shared by every analyzer's `__main__`."""
    settings = load_settings()
    keep_files_private(settings, database=False)
    setup_logging(analyzer.service, settings.log_level)
    provider = setup_tracing(f"analyzer-{analyzer.service}", settings.trace_dir)
    meters = setup_metrics(f"analyzer-{analyzer.service}")
    host, port = listen_address(analyzer.service, settings, argv)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with metrics_listener(settings.metrics_host, settings.metrics_port):
            await serve_analyzer(analyzer, settings, host, port, stop)

    try:
        asyncio.run(main())
    finally:
        provider.shutdown()
        meters.shutdown()
