"""A frontend's load test against the two static servers: Python's `http.server` (what Assay used) and Assay's own
(services/orchestrator/apps/static_server.py), with the performance analyzer's load generator and client at its
default load (ASSAY_PERF_REQUESTS at ASSAY_PERF_CONCURRENCY). Each server is a separate process on loopback.

Run: `.venv/bin/python -m benchmarks.static_frontend [runs]`; prints p50/p99/max per server and run.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from services.analyzers.performance.load import Samples, generate_load
from services.analyzers.performance.stats import summarize
from services.analyzers.running_app.client import http_client
from services.orchestrator.apps import static_server
from shared.operations.config import load_settings
from shared.operations.ports import free_port
from shared.operations.target_policy import TargetPolicy

PAGE = (
    "<!doctype html><html><head><title>front</title></head><body>" + "<p>asset</p>" * 200 + "</body></html>"
)


def _servers(folder: Path, port: int) -> dict[str, list[str]]:
    return {
        "http.server": [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(folder),
        ],
        "assay static_server": [sys.executable, static_server.__file__, str(port), str(folder)],
    }


async def _load(url: str) -> tuple[float, float, float]:
    settings = load_settings()
    policy = TargetPolicy(app_ports=frozenset({int(url.rsplit(":", 1)[1].rstrip("/"))}))
    async with http_client(
        policy, timeout_s=settings.perf_timeout_s, connections=settings.perf_concurrency
    ) as client:
        samples = await generate_load(
            client,
            Samples(url=url),
            requests=settings.perf_requests,
            concurrency=settings.perf_concurrency,
            duration_s=settings.perf_duration_s,
        )
    latency = summarize(samples).latency_ms
    return latency.p50 or 0.0, latency.p99 or 0.0, latency.max or 0.0


def _listening(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "index.html").write_text(PAGE)
        for name in _servers(Path(folder), 0):
            port = free_port()
            process = subprocess.Popen(
                _servers(Path(folder), port)[name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                _listening(port)
                for run in range(runs):
                    p50, p99, most = asyncio.run(_load(f"http://127.0.0.1:{port}/"))
                    print(
                        f"{name:20} run {run + 1}: p50 {p50:8.1f} ms  p99 {p99:8.1f} ms  max {most:8.1f} ms",
                        flush=True,
                    )
            finally:
                process.terminate()
                process.wait()


if __name__ == "__main__":
    main()
