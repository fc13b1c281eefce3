"""The services' own /metrics listener (shared/telemetry/metrics.py), in process: what it answers, and that a taken port
costs the listener, not the service."""

from __future__ import annotations

import asyncio
import logging
import socket

import httpx
import pytest

from shared.telemetry.metrics import metrics_listener
from tests.support.ports import free_port


async def test_it_answers_get_metrics_in_the_prometheus_format_and_404_otherwise() -> None:
    port = free_port()
    async with metrics_listener("127.0.0.1", port), httpx.AsyncClient(timeout=5) as client:
        scraped = await client.get(f"http://127.0.0.1:{port}/metrics")
        other = await client.post(f"http://127.0.0.1:{port}/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE " in scraped.text
    assert other.status_code == 404


async def test_a_taken_port_is_logged_and_the_service_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="shared.telemetry.metrics"):
            async with metrics_listener("127.0.0.1", port):
                await asyncio.sleep(0)  # the body runs
    assert f"no /metrics listener on 127.0.0.1:{port}" in caplog.text
