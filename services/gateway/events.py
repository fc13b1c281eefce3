"""`GET /api/tasks/{task_id}/events`: a task's events as Server-Sent Events, from the ASSAY_EVENTS stream.

An ordered consumer on `assay.events.<task_id>.>` delivering everything, so a client that connects late still
sees the task from its first event; the stream ends after the terminal event. The consumer is deleted as soon as
the stream ends or its client leaves.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import msgspec
import nats.errors
from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException
from litestar.params import HeaderParameter
from litestar.response import Stream
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.gateway.auth import requires
from services.gateway.resources import NATS_ERRORS, Resources
from services.gateway.tasks import TaskIdPath, find_task
from shared.messages import (
    TERMINAL_STATUSES,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    decode_event,
    encode,
)
from shared.subjects import EVENTS_STREAM, task_events

log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0  # proxies close idle connections; a comment line every 15 s keeps this one open
SETTLED_QUIET_S = 2.0  # a replay of a finished task ends after this much silence, should its end not be seen
RELEASE_S = 5.0  # the longest the cleanup after a stream waits for the server


def frame(kind: str, data: bytes, event_id: int) -> bytes:
    """One SSE frame: `id: <stream sequence>`, `event: <kind>` and the event's JSON on one `data:` line."""
    return f"id: {event_id}\nevent: {kind}\n".encode() + b"data: " + data + b"\n\n"


async def subscribe_events(
    js: JetStreamContext, task_id: str, after: int | None = None
) -> JetStreamContext.PushSubscription:
    """An ordered consumer replaying the task's events from its first, or from the one after stream sequence
    `after` (the `Last-Event-ID` of a client that reconnects)."""
    if after is None:
        config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    else:
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1)
    return await js.subscribe(
        task_events(task_id), stream=EVENTS_STREAM, ordered_consumer=True, config=config
    )


async def event_frames(
    js: JetStreamContext,
    subscription: JetStreamContext.PushSubscription,
    task_id: str,
    settled: bool = False,
) -> AsyncIterator[bytes]:
    """SSE frames for every event the subscription delivers, ending after the terminal one; at the end, however
    it comes (the terminal event, the client leaving), its consumer is deleted.

    `settled`: the task is known to have ended, so the stream also ends once the replay has caught up with what
    the stream holds (its terminal event may have aged out), or after SETTLED_QUIET_S of silence.
    """
    try:
        if settled and await nothing_to_replay(subscription):
            return
        while True:
            try:
                message = await subscription.next_msg(timeout=SETTLED_QUIET_S if settled else KEEPALIVE_S)
            except nats.errors.TimeoutError:
                if settled:
                    return
                yield b": keep-alive\n\n"
                continue
            try:
                event = decode_event(message.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                log.warning(
                    "skipping an undecodable event on %s: %s",
                    message.subject,
                    error,
                    extra={"task_id": task_id},
                )
                continue
            # Re-encoded: the JSON is then guaranteed to be one line, as an SSE `data:` field needs.
            yield frame(
                str(type(event).__struct_config__.tag), encode(event), message.metadata.sequence.stream
            )
            if isinstance(event, TaskCompleted | TaskFailed | TaskCancelled):
                return
            if settled and message.metadata.num_pending == 0:
                return  # the last event the stream holds of this task
    finally:
        # A client that leaves cancels this generator (Litestar cancels the response's task group): the cleanup
        # is shielded from that cancellation, bounded in time.
        with anyio.move_on_after(RELEASE_S, shield=True):
            await release(js, subscription)


async def nothing_to_replay(subscription: JetStreamContext.PushSubscription) -> bool:
    """True when the consumer has neither delivered nor holds an event: the stream keeps none of this task."""
    try:
        info = await subscription.consumer_info()
    except (nats.errors.Error, TimeoutError):
        return False  # not known: the replay then ends after its quiet time
    return info.num_pending == 0 and not (info.delivered and info.delivered.consumer_seq)


async def release(js: JetStreamContext, subscription: JetStreamContext.PushSubscription) -> None:
    """Unsubscribe and delete the ordered consumer now. Unsubscribing alone leaves the ephemeral consumer on the
    server until its inactivity threshold (seconds per client that left: a reconnecting crowd piles them up)."""
    # nats-py keeps the current name here (an ordered consumer is re-created)
    consumer = subscription._consumer
    try:
        await subscription.unsubscribe()
        await js.delete_consumer(EVENTS_STREAM, consumer)
    except (nats.errors.Error, TimeoutError) as error:  # the server drops it after the threshold anyway
        log.debug("releasing the SSE consumer %s failed: %s", consumer, error)


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
    try:
        # Subscribed before the response starts, so an unreachable NATS is a 503, not a broken stream.
        subscription = await subscribe_events(resources.js, task_id, after=last_event_id)
    except NATS_ERRORS as error:
        raise ServiceUnavailableException(f"cannot read the event stream: {error!r}") from error
    settled = task.status in TERMINAL_STATUSES
    return sse(event_frames(resources.js, subscription, task_id, settled=settled))


def sse(frames: AsyncIterator[bytes]) -> Stream:
    """A Server-Sent Events response: not cached, not buffered by a proxy."""
    return Stream(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
