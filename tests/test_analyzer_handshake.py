"""An analyzer admits only clients that show the shared token, and only frames a request can need: a frame above
the limit closes the connection before the analyzer reads it (its memory does not grow with what is sent)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from shared.wire.protocol import (
    MAX_REQUEST_FRAME_BYTES,
    HealthFrame,
    HealthReport,
    decode_analyzer_frame,
    encode_frame,
)
from tests.support.analyzers import AUTH, start_analyzer, stop


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The performance analyzer (its one tool needs nothing installed) as a process: its URL and pid."""
    url, process = start_analyzer("performance", tmp_path_factory.mktemp("handshake"))
    yield url, process.pid
    stop(process)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": AUTH["Authorization"] + "x"}]
)
async def test_a_handshake_without_the_token_is_refused(
    analyzer: tuple[str, int], headers: dict[str, str]
) -> None:
    url, _pid = analyzer
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers=headers, open_timeout=5):
            pass
    assert refused.value.response.status_code == 401


async def test_the_token_admits_a_client(analyzer: tuple[str, int]) -> None:
    url, _pid = analyzer
    async with connect(url, additional_headers=AUTH, open_timeout=5) as websocket:
        await websocket.send(encode_frame(HealthFrame(id="h1")))
        report = decode_analyzer_frame(await asyncio.wait_for(websocket.recv(), 10))
    assert isinstance(report, HealthReport) and report.service == "performance"


async def test_a_frame_above_the_limit_closes_the_connection_without_memory_growth(
    analyzer: tuple[str, int],
) -> None:
    url, pid = analyzer
    before = rss_bytes(pid)
    big = "x" * (64 * 1024 * 1024)
    for _ in range(3):
        async with connect(url, additional_headers=AUTH, open_timeout=5, max_size=None) as websocket:
            with pytest.raises(ConnectionClosed):
                await websocket.send(big)
                await asyncio.wait_for(websocket.recv(), 10)
            assert websocket.close_code == 1009  # message too big
    # Just above the limit is refused too; just below it is read (and answered as a bad frame).
    async with connect(url, additional_headers=AUTH, open_timeout=5) as websocket:
        await websocket.send("y" * (MAX_REQUEST_FRAME_BYTES - 16))
        assert "bad_request" in str(await asyncio.wait_for(websocket.recv(), 10))
    async with connect(url, additional_headers=AUTH, open_timeout=5) as websocket:
        with pytest.raises(ConnectionClosed):
            await websocket.send("y" * (MAX_REQUEST_FRAME_BYTES + 1))
            await asyncio.wait_for(websocket.recv(), 10)
    # 192 MiB were sent; the analyzer held none of it.
    assert rss_bytes(pid) - before < 16 * 1024 * 1024
