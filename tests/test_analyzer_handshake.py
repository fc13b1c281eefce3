"""An analyzer admits only clients that show the shared token, and only frames a request can need: a frame above
the limit closes the connection (1009) before the analyzer reads it (its memory does not grow with what is sent)."""

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


def frame_of_size(size: int) -> str:
    """An analyze frame of exactly `size` bytes whose `tools` is a string, not a list: valid JSON, a bad frame."""
    head = '{"type":"analyze","id":"big","tools":"'
    return head + "y" * (size - len(head) - 2) + '"}'


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
    # Just below the limit a frame is read and judged by what it holds: a known frame with a wrong field is answered
    # bad_request, text that is not JSON closes the connection as such (1007). Just above it is refused by its size
    # alone (1009), whatever it holds.
    async with connect(url, additional_headers=AUTH, open_timeout=5) as websocket:
        await websocket.send(frame_of_size(MAX_REQUEST_FRAME_BYTES - 16))
        assert "bad_request" in str(await asyncio.wait_for(websocket.recv(), 10))
    for text, code in (
        ("y" * (MAX_REQUEST_FRAME_BYTES - 16), 1007),
        (frame_of_size(MAX_REQUEST_FRAME_BYTES + 1), 1009),
    ):
        async with connect(url, additional_headers=AUTH, open_timeout=5) as websocket:
            with pytest.raises(ConnectionClosed):
                await websocket.send(text)
                await asyncio.wait_for(websocket.recv(), 10)
            assert websocket.close_code == code
    # 192 MiB were sent; the analyzer held none of it.
    assert rss_bytes(pid) - before < 16 * 1024 * 1024
