"""`GET /api/tasks/{task_id}/events`: a task's events as Server-Sent Events, from the ASSAY_EVENTS stream.

The gateway reads the stream without a consumer of its own: each event of the task is fetched by stream sequence
(`$JS.API.STREAM.MSG.GET` with `next_by_subj` = `assay.events.<task_id>.>`, answered by the stream's leader), from
the first (or the one after `Last-Event-ID`) on, so a client that connects late still sees the task from its first
event. A core NATS subscription to the same subjects rings a doorbell when a new event is published; the stream is
read again then, and every POLL_S in case a ring was lost in a reconnect. Reading needs no right to create or delete
consumers, so the gateway has none (shared/jetstream/nats_users.py). The stream ends after the terminal event; for a task
that had ended already, once the replay has caught up with what the stream holds (its terminal event may have aged
out).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import msgspec
import nats.errors
import nats.js.errors
from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException
from litestar.params import HeaderParameter
from litestar.response import Stream
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg

from services.gateway.api.tasks.task import TaskIdPath, find_task
from services.gateway.auth import requires
from services.gateway.resources import NATS_ERRORS, Resources
from shared.wire.messages import (
    TERMINAL_STATUSES,
    TaskEvent,
    TerminalEvent,
    decode_event,
    encode,
    event_kind,
)
from shared.wire.subjects import EVENTS_STREAM, task_events

log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0  # proxies close idle connections; a comment line every 15 s keeps this one open
POLL_S = 2.0  # the stream is read again after this long without a doorbell
RELEASE_S = 5.0  # the longest the cleanup after a stream waits for the server


def frame(kind: str, data: bytes, event_id: int) -> bytes:
    """One SSE frame: `id: <stream sequence>`, `event: <kind>` and the event's JSON on one `data:` line."""
    return f"id: {event_id}\nevent: {kind}\n".encode() + b"data: " + data + b"\n\n"


class Doorbell:
    """A core NATS subscription to a task's event subjects that only says "something new was published"."""

    def __init__(self) -> None:
        self.rung = asyncio.Event()
        self.subscription: Subscription | None = None

    async def ring(self, _message: Msg) -> None:
        self.rung.set()

    async def wait(self, timeout_s: float) -> None:
        """Return when rung, or after `timeout_s`; either way the bell is quiet again."""
        try:
            await asyncio.wait_for(self.rung.wait(), timeout_s)
        except TimeoutError:
            pass
        self.rung.clear()

    async def listen(self, nc: Client, task_id: str) -> None:
        """Subscribe to the task's events; called before the stream is read, so nothing published after the first
        read goes unnoticed."""
        self.subscription = await nc.subscribe(task_events(task_id), cb=self.ring)
        await nc.flush()  # the server knows of the subscription before this returns

    async def release(self, nc: Client) -> None:
        """Unsubscribe (a closed connection has nothing left to release)."""
        if self.subscription is None or nc.is_closed:
            return
        try:
            await self.subscription.unsubscribe()
        except (nats.errors.Error, TimeoutError) as error:
            log.debug("unsubscribing an SSE doorbell failed: %s", error)


async def stored_events(js: JetStreamContext, task_id: str, start: int) -> AsyncIterator[RawStreamMsg]:
    """The task's events the stream holds from stream sequence `start` on, in order."""
    while True:
        try:
            message = await js.get_msg(EVENTS_STREAM, seq=start, subject=task_events(task_id), next=True)
        except nats.js.errors.NotFoundError:
            return
        if message.seq is None:
            return
        yield message
        start = message.seq + 1


def _decoded(message: RawStreamMsg, task_id: str) -> TaskEvent | None:
    try:
        return decode_event(message.data or b"")
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        log.warning(
            "skipping an undecodable event on %s: %s", message.subject, error, extra={"task_id": task_id}
        )
        return None


async def event_frames(
    nc: Client, js: JetStreamContext, task_id: str, after: int = 0, settled: bool = False
) -> AsyncIterator[bytes]:
    """SSE frames for every event of the task after stream sequence `after`, ending after the terminal one. Its
    doorbell lives as long as the generator: at the end, however it comes (the terminal event, the client leaving),
    it is unsubscribed.

    `settled`: the task is known to have ended, so the stream also ends once the replay has caught up with what the
    stream holds.
    """
    loop = asyncio.get_running_loop()
    written_at = loop.time()
    bell = Doorbell()
    try:
        await bell.listen(nc, task_id)
        while True:
            try:
                async for message in stored_events(js, task_id, after + 1):
                    after = message.seq or after
                    event = _decoded(message, task_id)
                    if event is None:
                        continue
                    # Re-encoded: the JSON is then guaranteed to be one line, as an SSE `data:` field needs.
                    yield frame(event_kind(event), encode(event), after)
                    written_at = loop.time()
                    if isinstance(event, TerminalEvent):
                        return
            except NATS_ERRORS as error:  # NATS away for a moment: keep the client, read again after the wait
                log.info("reading the events of %s paused: %r", task_id, error, extra={"task_id": task_id})
            else:
                if settled:
                    return  # the last event the stream holds of this task
            if loop.time() - written_at >= KEEPALIVE_S:
                yield b": keep-alive\n\n"
                written_at = loop.time()
            await bell.wait(min(POLL_S, KEEPALIVE_S - (loop.time() - written_at)))
    finally:
        # A client that leaves cancels this generator (Litestar cancels the response's task group): the cleanup
        # is shielded from that cancellation, bounded in time.
        with anyio.move_on_after(RELEASE_S, shield=True):
            await bell.release(nc)


@get(
    "/api/tasks/{task_id:str}/events",
    summary="Follow a task's events (Server-Sent Events)",
    description="`id: <stream sequence>` / `event: <kind>` / `data: <event JSON>` frames from the task's first "
    "event (with a `Last-Event-ID` header: from the event after that one); ends after the terminal one "
    "(`completed`, `failed` or `cancelled`); for a task that has ended, after the last event the stream still "
    "holds. A `: keep-alive` comment every 15 s.",
    tags=["tasks"],
    **requires("read", 404, 422, 503),
    media_type="text/event-stream",
)
async def task_event_stream(
    resources: NamedDependency[Resources],
    task_id: TaskIdPath,
    # Litestar leaves a minimum of 0 on an optional number out of the document: schema_extra puts it back.
    last_event_id: Annotated[
        int | None, HeaderParameter(name="Last-Event-ID", ge=0, schema_extra={"minimum": 0})
    ] = None,
) -> Stream:
    task = await find_task(resources, task_id)
    if not resources.nats.is_connected:  # a 503 now, rather than a stream that breaks at once
        raise ServiceUnavailableException("cannot read the event stream: not connected to NATS")
    settled = task.status in TERMINAL_STATUSES
    return sse(event_frames(resources.nats, resources.js, task_id, last_event_id or 0, settled))


def sse(frames: AsyncIterator[bytes]) -> Stream:
    """A Server-Sent Events response: not cached, not buffered by a proxy."""
    return Stream(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
