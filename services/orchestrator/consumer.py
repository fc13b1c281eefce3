"""The wire side: pull loops over the four priority durables (urgent first), and what becomes of each request
message: ack, nak with backoff, in_progress while it runs, or the DLQ.

Every replica binds the same durables, so JetStream shares the requests between them. A replica fetches only
while it has a free slot (settings.tasks_per_orchestrator), and always from the most urgent durable that has
something, so a queued urgent request is the next one it takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Literal

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.orchestrator.cancellation import CancelRegistry, cancel_marker
from services.orchestrator.runner import RunContext, run_task
from shared import subjects
from shared.config import Settings
from shared.delivery import backoff_s, consumer_attributes, keep_alive, settle
from shared.messages import (
    PRIORITIES,
    AnalysisRequest,
    Priority,
    TaskCancelled,
    TaskFailed,
    decode_request,
)
from shared.streams import declare_consumer, declare_streams, orchestrator_consumers
from shared.tasks import task_id_hint, task_ref_hint
from shared.tracing import TASK_ID_ATTRIBUTE, extract_context

log = logging.getLogger(__name__)
tracer = trace.get_tracer("services.orchestrator")

FETCH_TIMEOUT_S = 0.25  # per durable: an idle round over all four takes a second
IDLE_CHECK_S = 10.0  # an idle loop checks this often that its consumers still exist (a server may lose state)
RESUBSCRIBE_PAUSE_S = 1.0
TERMINAL_KINDS = ("completed", "failed", "cancelled")

Subscriptions = dict[Priority, JetStreamContext.PullSubscription]


@dataclass(frozen=True)
class Orchestrator:
    """One replica's state: its connection, settings, the tasks bucket, the tasks it runs, and how it runs one."""

    js: JetStreamContext
    settings: Settings
    tasks: KeyValue
    registry: CancelRegistry
    run: RunContext


async def declare(js: JetStreamContext, settings: Settings) -> None:
    """The streams and the four orchestrator durables (idempotent)."""
    await declare_streams(js)
    for config in orchestrator_consumers(settings.ack_wait_s, settings.max_deliver):
        await declare_consumer(js, subjects.REQUESTS_STREAM, config)


async def pull_loop(orc: Orchestrator, stop: asyncio.Event) -> None:
    """Take requests until `stop` is set, then cancel the running ones (their messages are nak'd)."""
    loop = asyncio.get_running_loop()
    subscriptions: Subscriptions | None = None
    running: set[asyncio.Task[None]] = set()
    stopping = asyncio.create_task(stop.wait())
    idle_since = loop.time()
    try:
        while not stop.is_set():
            if len(running) >= orc.settings.tasks_per_orchestrator:
                await asyncio.wait(running | {stopping}, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                if subscriptions is None:
                    subscriptions = await _subscribe(orc)
                found = await _next(subscriptions, stop)
            except Exception as error:  # noqa: BLE001 - the loop outlives any NATS failure
                log.warning("fetching requests failed (%r); subscribing again", error)
                await _dropped(subscriptions)
                subscriptions = None
                await _pause(stop, RESUBSCRIBE_PAUSE_S)
                continue
            if found is None:
                if loop.time() - idle_since > IDLE_CHECK_S:
                    idle_since = loop.time()
                    subscriptions = await _checked(subscriptions)
                continue
            idle_since = loop.time()
            priority, msg = found
            task = asyncio.create_task(deliver(orc, msg, priority), name=f"deliver {msg.subject}")
            running.add(task)
            task.add_done_callback(running.discard)
    finally:
        stopping.cancel()
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await _dropped(subscriptions)


async def _subscribe(orc: Orchestrator) -> Subscriptions:
    await declare(orc.js, orc.settings)
    subscriptions: Subscriptions = {}
    try:
        for priority in PRIORITIES:
            durable = subjects.orchestrator_durable(priority)
            subscriptions[priority] = await orc.js.pull_subscribe_bind(
                durable, stream=subjects.REQUESTS_STREAM
            )
    except BaseException:
        await _dropped(subscriptions)  # no half set left behind: the loop subscribes all four again
        raise
    log.info(
        "consuming %s as %s",
        subjects.REQUESTS_ALL,
        ", ".join(subjects.orchestrator_durable(p) for p in PRIORITIES),
    )
    return subscriptions


async def _next(subscriptions: Subscriptions, stop: asyncio.Event) -> tuple[Priority, Msg] | None:
    """One message from the most urgent durable that has one, or None when all four are empty (or stopping).

    A fetch is never cancelled half-way: the server would still deliver its message, to nobody, and the request
    would wait out ack_wait. Checking `stop` between fetches bounds shutdown to one fetch timeout instead.
    """
    for priority in PRIORITIES:
        if stop.is_set():
            return None
        try:
            messages = await subscriptions[priority].fetch(batch=1, timeout=FETCH_TIMEOUT_S)
        except TimeoutError:  # nats.errors.TimeoutError is one too: nothing queued at this priority
            continue
        if messages:
            return priority, messages[0]
    return None


async def _checked(subscriptions: Subscriptions | None) -> Subscriptions | None:
    """The subscriptions if their consumers still exist, else None (so that the loop declares them again)."""
    if subscriptions is None:
        return None
    try:
        for subscription in subscriptions.values():
            await subscription.consumer_info()
        return subscriptions
    except Exception as error:  # noqa: BLE001 - any failure means: subscribe again
        log.warning("consumer check failed (%r); subscribing again", error)
        await _dropped(subscriptions)
        return None


async def _dropped(subscriptions: Subscriptions | None) -> None:
    for subscription in (subscriptions or {}).values():
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def deliver(orc: Orchestrator, msg: Msg, priority: Priority) -> None:
    """Process one request message in a CONSUMER span continuing the publisher's trace, and settle it."""
    durable = subjects.orchestrator_durable(priority)
    with tracer.start_as_current_span(
        f"process {msg.subject}",
        context=extract_context(msg.headers),
        kind=SpanKind.CONSUMER,
        attributes=consumer_attributes(msg, durable),
    ) as span:
        try:
            request = decode_request(msg.data or b"")
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            span.set_status(Status(StatusCode.ERROR, str(error)))
            await _poison(orc, msg, durable, f"invalid request: {error}")
            return
        span.set_attribute(TASK_ID_ATTRIBUTE, request.task.id)
        span.set_attribute("messaging.message.id", request.event_id)
        keeper = asyncio.create_task(keep_alive([msg], max(0.2, orc.settings.ack_wait_s / 3)))
        try:
            outcome = await handle(orc, request)
        except asyncio.CancelledError:
            # Shutdown: the analyzers were told to stop; another replica takes the request now.
            await settle(msg, "nak")
            raise
        except Exception as error:  # noqa: BLE001 - any processing error is retried, then given up
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, repr(error)))
            await _failed(orc, msg, durable, request, error)
            return
        finally:
            keeper.cancel()
        if outcome == "ack":
            await settle(msg, "ack")


async def handle(orc: Orchestrator, request: AnalysisRequest) -> Literal["ack", "leave"]:
    """Run the request unless it ended before or was cancelled before it started.

    "leave": this replica already runs the task (the request was redelivered meanwhile); the running copy
    settles the message.
    """
    extra = {"task_id": request.task.id}
    if await has_ended(orc.js, request.task.id):
        log.info("task %s has ended already: request acknowledged", request.task.id, extra=extra)
        return "ack"
    signal = orc.registry.register(request.task.id)
    if signal is None:
        log.warning("task %s runs here already: redelivered request left alone", request.task.id, extra=extra)
        return "leave"
    try:
        marker = await cancel_marker(orc.tasks, request.task.id)
        if marker is not None:
            await orc.run.publisher.publish(TaskCancelled(task=request.task, reason=marker.reason))
            log.info("task %s cancelled before it started", request.task.id, extra=extra)
            return "ack"
        await run_task(orc.run, request, signal)
        return "ack"
    finally:
        orc.registry.unregister(request.task.id, signal)


async def has_ended(js: JetStreamContext, task_id: str) -> bool:
    """Whether ASSAY_EVENTS holds a terminal event of the task (a request redelivered after a crash)."""
    for kind in TERMINAL_KINDS:
        try:
            await js.get_last_msg(subjects.EVENTS_STREAM, subjects.event_subject(task_id, kind))
        except NotFoundError:
            continue
        return True
    return False


async def _failed(
    orc: Orchestrator, msg: Msg, durable: str, request: AnalysisRequest, error: Exception
) -> None:
    """A processing error: nak with backoff, or at max_deliver give the request up (DLQ, `failed` event)."""
    deliveries = msg.metadata.num_delivered
    extra = {"task_id": request.task.id, "deliveries": deliveries}
    if deliveries < orc.settings.max_deliver:
        delay = backoff_s(deliveries)
        log.warning("processing %s failed (%r); retry in %.0f s", request.task.id, error, delay, extra=extra)
        await settle(msg, "nak", delay)
        return
    reason = f"orchestrator gave up after {deliveries} deliveries: {error}"
    await _give_up(orc, msg, durable, reason, request.task.id)
    try:
        await orc.run.publisher.publish(TaskFailed(task=request.task, reason=reason))
    except Exception as second:  # noqa: BLE001 - the persister's stale-task check ends the task then
        log.error("could not publish `failed` for %s: %r", request.task.id, second, extra=extra)


async def _poison(orc: Orchestrator, msg: Msg, durable: str, reason: str) -> None:
    """A request no retry can fix: DLQ, term, and a `failed` event when it still names a real task."""
    # A request invalid elsewhere that still names a whole task (id, app, type) gets its `failed` event; anything
    # less names no app, so none (and no result folder) is made up for it: the DLQ keeps it with the reason.
    salvaged = task_ref_hint(msg.data)
    task_id = salvaged.id if salvaged else task_id_hint(msg.data)
    if task_id:
        trace.get_current_span().set_attribute(TASK_ID_ATTRIBUTE, task_id)
    await _give_up(orc, msg, durable, reason, task_id)
    if salvaged is None:
        return
    try:
        await orc.run.publisher.publish(TaskFailed(task=salvaged, reason=reason))
    except Exception as error:  # noqa: BLE001 - best effort; the DLQ holds the request and its reason
        log.error("could not publish `failed` for %s: %r", task_id, error, extra={"task_id": task_id})


async def _give_up(orc: Orchestrator, msg: Msg, durable: str, reason: str, task_id: str | None) -> None:
    """DLQ, then term; when the DLQ does not take it, nak, so that nothing is lost."""
    try:
        await orc.run.publisher.dead_letter(msg, durable, reason, task_id)
    except Exception as error:  # noqa: BLE001 - whatever the cause, the message must not be lost
        log.error("dead letter not published (%r); request kept", error, extra={"task_id": task_id})
        await settle(msg, "nak", backoff_s(msg.metadata.num_delivered))
        return
    log.error("request on %s sent to the DLQ: %s", msg.subject, reason, extra={"task_id": task_id})
    await settle(msg, "term")
