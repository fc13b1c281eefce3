"""The pipeline benchmark's load generator against a real HTTP server on loopback: it counts every 202 once with its
task id, counts refusals with the last error, keeps connections alive and replaces one the server closed while idle
(no timing is asserted)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from benchmarks import load


@dataclass
class Server:
    """An HTTP/1.1 endpoint: `/ok` accepts with a new task id, `/busy` answers 503; `idle_close` drops each
    connection silently after its first answer (as a keep-alive timeout does), `close_every` says
    `Connection: close` on every n-th answer."""

    port: int = 0
    idle_close: bool = False
    close_every: int = 0
    connections: int = 0
    bodies: list[bytes] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=itertools.count)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                lines = head.decode().split("\r\n")
                path = lines[0].split(" ")[1]
                length = next(
                    int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length")
                )
                self.bodies.append(await reader.readexactly(length))
                number = next(self.ids)
                if path == "/ok":
                    status, answer = "202 Accepted", b'{"task_id": "task_%012x"}' % number
                else:
                    status, answer = "503 Service Unavailable", b'{"detail": "NATS is down"}'
                closing = self.close_every and (number + 1) % self.close_every == 0
                headers = f"Content-Type: application/json\r\nContent-Length: {len(answer)}\r\n"
                headers += "Connection: close\r\n" if closing else ""
                writer.write(f"HTTP/1.1 {status}\r\n{headers}\r\n".encode() + answer)
                await writer.drain()
                if closing or self.idle_close:
                    return
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    listener = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield state


async def test_burst_counts_each_accepted_task_once_on_kept_alive_connections(server: Server) -> None:
    server.close_every = 7  # some answers end their connection: the sender opens another
    url = f"http://127.0.0.1:{server.port}/ok"

    submission = await load.burst(url, {"Authorization": "Bearer t"}, load.body("low"), 60, in_flight=4)

    assert submission.refused == 0, submission.last_error
    assert len(submission.accepted) == 60 == len(server.bodies)
    assert all(task_id.startswith("task_") for task_id in submission.accepted)
    assert 4 <= server.connections < 60  # kept alive, replaced when closed
    assert all(body == server.bodies[0] for body in server.bodies)
    assert b'"priority":"low"' in server.bodies[0]


async def test_refusals_are_counted_with_the_last_error(server: Server) -> None:
    submission = await load.burst(
        f"http://127.0.0.1:{server.port}/busy", {}, load.body("normal"), 10, in_flight=2
    )

    assert submission.accepted == {} and submission.refused == 10
    assert submission.last_error.startswith("HTTP 503") and "NATS is down" in submission.last_error


async def test_at_rate_replaces_a_connection_the_server_closed_while_idle(server: Server) -> None:
    server.idle_close = True
    submission = await load.at_rate(f"http://127.0.0.1:{server.port}/ok", {}, load.body("normal"), 40, 0.5)

    assert submission.refused == 0, submission.last_error
    assert len(submission.accepted) == 20 == len(server.bodies) == server.connections


async def test_nothing_listening_is_a_refusal_not_a_crash() -> None:
    listener = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()

    submission = await load.burst(f"http://127.0.0.1:{port}/ok", {}, load.body("normal"), 3, in_flight=1)

    assert submission.refused == 3 and "ConnectionRefusedError" in submission.last_error


async def test_paced_keeps_no_more_than_ahead_tasks_queued(server: Server) -> None:
    released = 0
    deepest = 0

    async def persisted() -> int:
        nonlocal deepest
        deepest = max(deepest, len(server.bodies) - released)
        return released

    async def release() -> None:  # the system persists 3 tasks at a time, now and then
        nonlocal released
        nonlocal deepest
        while released < 30:
            await asyncio.sleep(0.05)
            deepest = max(deepest, len(server.bodies) - released)
            released = min(len(server.bodies), released + 3)

    releasing = asyncio.create_task(release())
    submission = await load.paced(
        f"http://127.0.0.1:{server.port}/ok", {}, load.body("normal"), 30, persisted, 5
    )
    await releasing

    assert submission.refused == 0 and len(submission.accepted) == 30 == len(server.bodies)
    assert 0 < deepest <= 5
