"""The wire side: pull loops over the persister's two durable consumers, decoding at the edge, and the ack, nak,
in_progress and DLQ decisions for every message. Each message is processed inside a `process <subject>` span whose
parent comes from the message's traceparent header.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.persister.completion import PersisterContext, fail_task
from services.persister.handlers import Delivery, Retry, handle_event, handle_request
from shared import subjects
from shared.delivery import backoff_s, consumer_attributes, keep_alive, settle
from shared.errors import PoisonMessage
from shared.messages import TaskEvent, decode_event, decode_request
from shared.metrics import record_fetch
from shared.publishing import publish_dead_letter
from shared.streams import declare_consumer, declare_streams, persister_consumers
from shared.tasks import task_id_hint
from shared.tracing import TASK_ID_ATTRIBUTE, extract_context, trace_id_of

log = logging.getLogger(__name__)
tracer = trace.get_tracer("services.persister")

BATCH = 8
FETCH_TIMEOUT_S = 1.0  # also how quickly a loop notices shutdown
# An idle loop checks this often that its consumer still exists (a server may lose its state).
IDLE_CHECK_S = 10.0
RESUBSCRIBE_PAUSE_S = 1.0


@dataclass(frozen=True)
class ConsumerSpec:
    """One durable consumer of the persister: where it reads, how a message is decoded and who handles it."""

    stream: str
    durable: str
    filter_subject: str
    decode: Callable[[bytes], Any]
    handle: Callable[[PersisterContext, Any, Delivery], Awaitable[Retry | None]]


REQUESTS = ConsumerSpec(
    subjects.REQUESTS_STREAM,
    subjects.PERSISTER_REQUESTS_DURABLE,
    subjects.REQUESTS_ALL,
    decode_request,
    handle_request,
)
EVENTS = ConsumerSpec(
    subjects.EVENTS_STREAM, subjects.PERSISTER_EVENTS_DURABLE, subjects.EVENTS_ALL, decode_event, handle_event
)
CONSUMERS = (REQUESTS, EVENTS)


async def declare(js: JetStreamContext, ack_wait_s: float, max_deliver: int) -> None:
    """Streams and the persister's durables (idempotent; run at start and whenever a loop re-subscribes)."""
    await declare_streams(js)
    for stream, config in persister_consumers(ack_wait_s, max_deliver):
        await declare_consumer(js, stream, config)


async def _give_up(
    ctx: PersisterContext, spec: ConsumerSpec, msg: Msg, reason: str, task_id: str | None
) -> None:
    """DLQ, then term; when the DLQ does not take it, nak so that nothing is lost."""
    try:
        await publish_dead_letter(ctx.js, msg, spec.stream, spec.durable, reason, task_id)
    except Exception as error:  # noqa: BLE001 - whatever the cause, the message must not be lost
        log.error("dead letter not published (%s); message kept", error, extra={"task_id": task_id})
        await settle(msg, "nak", backoff_s(msg.metadata.num_delivered))
        return
    log.error("message on %s sent to the DLQ: %s", msg.subject, reason, extra={"task_id": task_id})
    await settle(msg, "term")


async def deliver(ctx: PersisterContext, spec: ConsumerSpec, msg: Msg) -> None:
    """Process one message and settle it: ack, nak with a delay, or DLQ + term."""
    deliveries = msg.metadata.num_delivered
    context = extract_context(msg.headers)
    with tracer.start_as_current_span(
        f"process {msg.subject}",
        context=context,
        kind=SpanKind.CONSUMER,
        attributes=consumer_attributes(msg, spec.durable),
    ) as span:
        hint = task_id_hint(msg.data, msg.subject)
        if hint:
            span.set_attribute(TASK_ID_ATTRIBUTE, hint)
        try:
            if not msg.data:
                raise PoisonMessage("empty message body")
            message = spec.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError, PoisonMessage) as error:
            span.set_status(Status(StatusCode.ERROR, str(error)))
            await _give_up(ctx, spec, msg, f"undecodable message: {error}", hint)
            return
        span.set_attribute(TASK_ID_ATTRIBUTE, message.task.id)
        span.set_attribute("messaging.message.id", message.event_id)
        delivery = Delivery(deliveries=deliveries, trace_id=trace_id_of(msg.headers))
        keeper = asyncio.create_task(keep_alive([msg], max(0.5, ctx.ack_wait_s / 3)))
        try:
            outcome = await spec.handle(ctx, message, delivery)
        except PoisonMessage as error:
            span.set_status(Status(StatusCode.ERROR, str(error)))
            await _give_up(ctx, spec, msg, f"invalid message: {error}", message.task.id)
            return
        except Exception as error:  # noqa: BLE001 - any processing error is retried, then given up
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)))
            await _failed(ctx, spec, msg, message, error)
            return
        finally:
            keeper.cancel()
        if outcome is not None and deliveries >= ctx.max_deliver:
            await _give_up(
                ctx,
                spec,
                msg,
                f"still not applicable after {deliveries} deliveries: {outcome.reason}",
                message.task.id,
            )
            return
        if outcome is None:
            await settle(msg, "ack")
        else:
            await settle(msg, "nak", outcome.delay_s)


async def _failed(
    ctx: PersisterContext, spec: ConsumerSpec, msg: Msg, message: Any, error: Exception
) -> None:
    """A processing error: retry with backoff, or after max_deliver give the message and its task up."""
    deliveries = msg.metadata.num_delivered
    extra = {"task_id": message.task.id, "deliveries": deliveries}
    if deliveries < ctx.max_deliver:
        delay = backoff_s(deliveries)
        log.warning("processing %s failed (%s); retry in %.0f s", msg.subject, error, delay, extra=extra)
        await settle(msg, "nak", delay)
        return
    reason = f"persister gave up on {msg.subject} after {deliveries} deliveries: {error}"
    await _give_up(ctx, spec, msg, reason, message.task.id)
    try:  # best effort: the error that stopped the message may stop this too
        await fail_task(ctx, message.task.id, reason, message if isinstance(message, TaskEvent) else None)
    except Exception as second:  # noqa: BLE001 - best effort
        log.error("could not mark task %s failed: %s", message.task.id, second, extra=extra)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def pull_loop(ctx: PersisterContext, spec: ConsumerSpec, stop: asyncio.Event) -> None:
    """Fetch and process messages until `stop` is set; survive NATS restarts by subscribing again."""
    loop = asyncio.get_running_loop()
    subscription: JetStreamContext.PullSubscription | None = None
    idle_since = loop.time()
    while not stop.is_set():
        try:
            if subscription is None:
                await declare(ctx.js, ctx.ack_wait_s, ctx.max_deliver)
                subscription = await ctx.js.pull_subscribe_bind(spec.durable, stream=spec.stream)
                log.info("consuming %s as %s", spec.filter_subject, spec.durable)
            messages = await subscription.fetch(batch=BATCH, timeout=FETCH_TIMEOUT_S)
        except TimeoutError:  # nothing to fetch (nats.errors.TimeoutError is one too)
            if subscription is not None and loop.time() - idle_since > IDLE_CHECK_S:
                idle_since = loop.time()
                subscription = await _checked(subscription)
            continue
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the loop outlives any NATS failure
            log.warning("%s: fetch failed (%s); subscribing again", spec.durable, error)
            await _dropped(subscription)
            subscription = None
            await _wait(stop, RESUBSCRIBE_PAUSE_S)
            continue
        idle_since = loop.time()
        record_fetch(spec.durable, [msg.data for msg in messages])
        waiting = list(messages)
        # The batch is handled one message at a time; the ones still waiting must not run out their ack wait.
        keeper = asyncio.create_task(keep_alive(waiting, max(0.5, ctx.ack_wait_s / 3)))
        try:
            for msg in messages:
                waiting.remove(msg)
                try:
                    await deliver(ctx, spec, msg)
                except Exception:
                    # A bug must not stop the loop: unsettled, the message comes back after ack_wait.
                    log.exception("delivering %s failed", msg.subject)
        finally:
            keeper.cancel()
    await _dropped(subscription)


async def _checked(
    subscription: JetStreamContext.PullSubscription,
) -> JetStreamContext.PullSubscription | None:
    """The subscription if its consumer still exists, else None (so that the loop declares it again)."""
    try:
        await subscription.consumer_info()
        return subscription
    except Exception as error:  # noqa: BLE001 - any failure means: subscribe again
        log.warning("consumer check failed (%s); subscribing again", error)
        await _dropped(subscription)
        return None


async def _dropped(subscription: JetStreamContext.PullSubscription | None) -> None:
    if subscription is not None:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
