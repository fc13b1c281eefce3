"""The one load generator of the pipeline benchmark, for Assay and Celery alike: HTTP/1.1 over loopback.

`burst` is closed-loop (a fixed number of requests in flight, as fast as the endpoint answers: saturation);
`at_rate` is open-loop (request i leaves at start + i / rate whatever the answers do: latency at an offered load).
Each accepted request is kept with the wall-clock time its 202 arrived, the start of its accept → persisted time.

The client is a few lines of asyncio streams on kept-alive connections, not a general HTTP library: the load
generator shares the 2 cores with the system it measures, and httpx's connection pool spent about 6 ms of CPU per
request here (its pool re-checks every connection for every request), as much as some of the services under test.
Whatever the generator spends is taken from both systems alike and flattens their ratio towards 1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgspec

REQUEST_TIMEOUT_S = 30.0
PACE_POLL_S = 0.5  # how often a paced run counts what is persisted


class _Accepted(msgspec.Struct):
    task_id: str


_ACCEPTED = msgspec.json.Decoder(_Accepted)


@dataclass
class Submission:
    """What a load run got back: accepted task ids with their accept time (epoch seconds), and refusals."""

    accepted: dict[str, float] = field(default_factory=dict)
    refused: int = 0
    last_error: str = ""

    @property
    def first_accept(self) -> float | None:
        return min(self.accepted.values(), default=None)


def body(priority: str) -> dict[str, Any]:
    """A no-op analysis request at `priority` (see benchmarks/noop_analyzer.py for why `static` and `ruff`)."""
    return {
        "model_slug": "bench",
        "app_number": 1,
        "analysis_type": "static",
        "tools": ["ruff"],
        "priority": priority,
    }


class _Post:
    """One POST, encoded once, sent on any number of kept-alive connections to its host."""

    def __init__(self, url: str, headers: dict[str, str], payload: dict[str, Any]) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"the load generator speaks plain HTTP to host:port, not {url!r}")
        self.host, self.port = parts.hostname, parts.port
        data = msgspec.json.encode(payload)
        lines = [
            f"POST {parts.path or '/'} HTTP/1.1",
            f"Host: {parts.netloc}",
            "Content-Type: application/json",
        ]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(data)}")
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode() + data

    async def connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return _Connection(reader, writer)


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        """Send `request`; the answer's status, body and whether the server keeps the connection open."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = dict(line.split(":", 1) for line in header_lines if ":" in line)
        fields = {name.strip().lower(): value.strip() for name, value in headers.items()}
        if "content-length" not in fields:
            raise ValueError(f"answer without Content-Length ({status_line})")
        answer = await self.reader.readexactly(int(fields["content-length"]))
        return status, answer, fields.get("connection", "").lower() != "close"

    def close(self) -> None:
        self.writer.close()


async def _exchange(post: _Post, kept_alive: _Connection | None) -> tuple[_Connection, int, bytes, bool]:
    """`post` on the kept-alive connection, else on a new one; a connection that fails is closed."""
    if kept_alive is not None:
        try:
            return (kept_alive, *await kept_alive.exchange(post.request))
        except BaseException as error:
            kept_alive.close()
            # Closed by the server while idle (its keep-alive timeout) before it read anything: a new one.
            unread = isinstance(error, asyncio.IncompleteReadError) and not error.partial
            if not unread and not isinstance(error, ConnectionError):
                raise
    connection = await post.connect()
    try:
        return (connection, *await connection.exchange(post.request))
    except BaseException:
        connection.close()
        raise


async def _submit(post: _Post, connection: _Connection | None, into: Submission) -> _Connection | None:
    """One request on `connection` (a new one when None); the connection to use next, None after an error."""
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            connection, status, answer, kept = await _exchange(post, connection)
    except (
        OSError,
        TimeoutError,
        ValueError,
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
    ) as error:
        into.refused += 1
        into.last_error = f"{type(error).__name__}: {error}"
        return None
    if status == 202:
        into.accepted[_ACCEPTED.decode(answer).task_id] = time.time()
    else:
        into.refused += 1
        into.last_error = f"HTTP {status}: {answer[:200].decode(errors='replace')}"
    if not kept:
        connection.close()
        return None
    return connection


async def burst(
    url: str,
    headers: dict[str, str],
    payload: dict[str, Any],
    count: int,
    in_flight: int = 32,
    time_limit_s: float = float("inf"),
) -> Submission:
    """Send `count` requests, `in_flight` at a time, each as soon as a previous one is answered; no new request
    leaves after `time_limit_s` (a system that accepts slowly is not waited for without end). `paced` with no
    limit on the queue."""
    return await paced(url, headers, payload, count, _none_persisted, count + 1, in_flight, time_limit_s)


async def _none_persisted() -> int:
    return 0


async def paced(
    url: str,
    headers: dict[str, str],
    payload: dict[str, Any],
    count: int,
    persisted: Callable[[], Awaitable[int]],
    ahead: int,
    in_flight: int = 32,
    time_limit_s: float = float("inf"),
) -> Submission:
    """Send `count` requests, `in_flight` at a time, each as soon as a previous one is answered, but none while
    `ahead` accepted tasks are not yet persisted (`persisted()` counts them, polled every PACE_POLL_S): the system
    works through a queue that stays this deep from the first task to the last, so the start and the end of a long
    run are measured under the same load. No new request leaves after `time_limit_s`."""
    submission = Submission()
    post = _Post(url, headers, payload)
    queue = iter(range(count))
    deadline = time.monotonic() + time_limit_s
    sent = done = 0
    room = asyncio.Event()

    def queued() -> int:  # sent and not refused (in flight or accepted), not yet persisted
        return sent - submission.refused - done

    async def pace() -> None:
        nonlocal done
        while True:
            done = await persisted()
            if queued() < ahead:
                room.set()
            await asyncio.sleep(PACE_POLL_S)

    async def sender() -> None:
        nonlocal sent
        connection: _Connection | None = None
        try:
            for _ in queue:
                while queued() >= ahead:
                    room.clear()
                    await room.wait()
                if time.monotonic() > deadline:
                    return
                sent += 1
                connection = await _submit(post, connection, submission)
        finally:
            if connection is not None:
                connection.close()

    pacer = asyncio.create_task(pace())
    try:
        await asyncio.gather(*(sender() for _ in range(in_flight)))
    finally:
        pacer.cancel()
    return submission


async def at_rate(
    url: str, headers: dict[str, str], payload: dict[str, Any], rate: float, duration_s: float
) -> Submission:
    """Offer `rate` requests per second for `duration_s`, each on schedule, without waiting for earlier answers."""
    submission = Submission()
    post = _Post(url, headers, payload)
    idle: list[_Connection] = []  # kept-alive connections free for the next request; a new one when none is

    async def send() -> None:
        connection = await _submit(post, idle.pop() if idle else None, submission)
        if connection is not None:
            idle.append(connection)

    count = round(rate * duration_s)
    start = time.monotonic()
    sends = []
    for index in range(count):
        await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
        sends.append(asyncio.create_task(send()))
    await asyncio.gather(*sends)
    for connection in idle:
        connection.close()
    return submission
