"""The one JetStream consumer loop of Assay: pull, hold locally by priority, process concurrently, settle.

A service describes its durables (`Source`, most urgent first), how a message is decoded and what handling it
means (`Flow.handle` returns an `Outcome`); this loop does the rest, the same way for every service:

- each durable has its own fetcher, so no durable waits behind another's empty poll. A fetcher keeps at most
  `prefetch` of its messages held locally and not started (waiting, or parked behind a message of the same key),
  so a replica holds at most `prefetch` per durable plus `concurrency` running, and one durable's backlog never
  fills the room of another: an urgent message is fetched as soon as it is published, even behind a local queue
  of low work, and the dispatcher always starts the most urgent message waiting (oldest first within a durable);
- at most `concurrency` messages are processed at once, each in a `process <subject>` CONSUMER span continuing
  the publisher's trace; messages with the same `key` (the persister's task id) are processed one after another,
  in the order they were fetched;
- a redelivered message (a crash may have brought it back) runs alone: it starts once nothing else runs, nothing
  else starts and no fetcher fetches until it settles, and after a redelivery fetchers take one message at a time
  (as on start) until a first delivery comes. JetStream charges a delivery to every message held when a process
  dies, so a message that kills its replica on every delivery is charged alone and reaches `max_deliver` without
  taking the work beside it along;
- one keep-alive sends `in_progress()` for every message held (waiting or running) well within `ack_wait`;
- an outcome settles the message: `ACK`, `Retry` (nak with a delay), `GiveUp` (ASSAY_DLQ, then term) or `LEAVE`
  (someone else settles it). An undecodable message, or one whose handling raised `max_deliver` times, is given up
  by the loop itself and the flow's `given_up` hook is told (to fail the task). Errors below `max_deliver` are
  retried with backoff;
- a fetch that fails (server restart, consumer lost) subscribes again; an idle fetcher checks now and then that its
  consumer still exists. On stop, running messages are cancelled and everything held is nak'd for another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from shared.jetstream.delivery import backoff_s, consumer_attributes, keep_alive, settle
from shared.jetstream.publishing import publish_dead_letter
from shared.telemetry.metrics import record_fetch
from shared.telemetry.tracing import TASK_ID_ATTRIBUTE, extract_context, trace_id_of
from shared.wire.tasks import TaskRef

log = logging.getLogger(__name__)
tracer = trace.get_tracer("assay.consuming")

# an idle fetcher's pull waits this long on the server (also bounds how fast a stop is noticed)
LINGER_S = 1.0
TOP_UP_S = 0.02  # after a message, more are taken at once when queued; an empty queue costs this much
# an idle fetcher checks this often that its consumer still exists (a server may lose state)
IDLE_CHECK_S = 10.0
RESUBSCRIBE_PAUSE_S = 1.0


class TaskMessage(Protocol):
    """What every message the loop handles carries: the task it is about (every request and event,
    shared/wire/messages.py; None for a message that names none, a JetStream advisory), and its own id."""

    @property
    def task(self) -> TaskRef | None: ...

    @property
    def event_id(self) -> str: ...


def task_id_of(message: TaskMessage | None) -> str | None:
    """The id of the task a message is about, when it names one."""
    return message.task.id if message is not None and message.task is not None else None


@dataclass(frozen=True)
class Ack:
    """Done with: acknowledge."""


@dataclass(frozen=True)
class Leave:
    """Not settled here: another holder of the same message settles it (or it comes back after ack_wait)."""


@dataclass(frozen=True)
class Retry:
    """Not yet: hand the message back to be delivered again after `delay_s`."""

    delay_s: float
    reason: str


@dataclass(frozen=True)
class GiveUp:
    """No retry can fix it: to ASSAY_DLQ with the reason, then term."""

    reason: str


ACK = Ack()
LEAVE = Leave()
Outcome = Ack | Leave | Retry | GiveUp

M = TypeVar("M", bound=TaskMessage)  # what a flow's durables decode to


@dataclass(frozen=True)
class Delivery:
    """The facts of one delivery that handlers act on, without knowing NATS."""

    deliveries: int  # 1 on the first delivery
    trace_id: str | None  # of the incoming traceparent header, when there is one


@dataclass(frozen=True)
class Source(Generic[M]):
    """One durable pull consumer: where it reads and how its messages are decoded (raising msgspec errors)."""

    stream: str
    durable: str
    decode: Callable[[bytes], M]
    invalid: str = "undecodable message"  # the dead letter's reason starts with this when decoding fails


@dataclass(frozen=True)
class Flow(Generic[M]):
    """A service's side of the loop: its durables (most urgent first) and what handling a message means."""

    name: str  # the service, in reasons: "<name> gave up after N deliveries: …"
    js: JetStreamContext
    sources: Sequence[Source[M]]
    declare: Callable[[], Awaitable[None]]  # streams and durables (idempotent), before each subscribe
    handle: Callable[[M, Delivery], Awaitable[Outcome]]
    # After the loop gave a message up itself (undecodable: None, or failing max_deliver times) with this reason.
    given_up: Callable[[Msg, M | None, str], Awaitable[None]]
    max_deliver: int
    ack_wait_s: float
    concurrency: int  # messages processed at once
    # Messages of one durable held locally and not yet started (waiting, or parked behind their key).
    prefetch: int
    # Messages of one key run one at a time, in fetch order (None: a message with no key runs on its own).
    key: Callable[[M], str | None] | None = None
    task_id_hint: Callable[[Msg], str | None] = lambda _msg: None  # for an undecodable message's dead letter


@dataclass(order=True)
class _Held(Generic[M]):
    rank: int
    seq: int
    msg: Msg = field(compare=False)
    message: M = field(compare=False)
    source: Source[M] = field(compare=False)


class _State(Generic[M]):
    """What one running loop holds: waiting messages by priority, the running ones, the keys in use."""

    def __init__(self, flow: Flow[M]) -> None:
        self.flow = flow
        self.waiting: list[_Held[M]] = []  # a heap: most urgent, then oldest first
        self.parked: dict[str, deque[_Held[M]]] = {}  # key -> messages behind the one of that key running
        # Everything fetched and not settled, by id(): kept alive, nak'd on stop.
        self.held: dict[int, Msg] = {}
        # Held and not started (waiting or parked), per durable: what `prefetch` bounds.
        self.fetched: dict[str, int] = {source.durable: 0 for source in flow.sources}
        self.running: set[asyncio.Task[None]] = set()
        self.changed = asyncio.Event()  # for the dispatcher: messages arrived or a run ended
        self.room = asyncio.Event()  # for the fetchers: waiting messages were started
        self.seq = itertools.count()
        self.stopping = False  # no parked message starts once the loop is stopping
        self.redelivered = 0  # redelivered messages held: fetchers take nothing more meanwhile
        self.alone = False  # a redelivered message runs alone: nothing else starts
        self.recovering = True  # on start and after a redelivery, fetch one message at a time


async def consume(flow: Flow[M], stop: asyncio.Event) -> None:
    """Run the loop until `stop` is set; then cancel what runs and hand back what is held."""
    state = _State(flow)
    # Subscribed in priority order and fetched once before anything starts, so that a replica starting on a full
    # queue takes its most urgent request first.
    ready = [asyncio.Event() for _ in flow.sources]
    fetchers = [
        asyncio.create_task(
            _fetch_loop(state, rank, source, ready[rank], stop), name=f"fetch {source.durable}"
        )
        for rank, source in enumerate(flow.sources)
    ]
    keeper = asyncio.create_task(keep_alive(state.held.values(), max(0.2, flow.ack_wait_s / 3)))
    stopping = asyncio.create_task(stop.wait())
    try:
        for event in ready:
            await _either(event, stop)
        while not stop.is_set():
            _dispatch(state)
            state.changed.clear()
            changed = asyncio.create_task(state.changed.wait())
            await asyncio.wait([changed, stopping], return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
    finally:
        state.stopping = True
        stopping.cancel()
        # A fetch is never cancelled half-way (the server would deliver its messages to nobody): each fetcher ends
        # after its current fetch, within LINGER_S.
        await asyncio.gather(*fetchers, return_exceptions=True)
        for task in state.running:
            task.cancel()
        await asyncio.gather(*state.running, return_exceptions=True)
        keeper.cancel()
        for msg in list(state.held.values()):
            await settle(msg, "nak")


def _redelivered(held: _Held[M]) -> bool:
    return held.msg.metadata.num_delivered > 1


def _may_start(state: _State[M], held: _Held[M]) -> bool:
    """Whether a message may start now: never beside a redelivered one, which waits until nothing runs."""
    return not state.alone and (not _redelivered(held) or not state.running)


def _dispatch(state: _State[M]) -> None:
    """Start the most urgent waiting messages while there is room."""
    while state.waiting and len(state.running) < state.flow.concurrency:
        if not _may_start(state, state.waiting[0]):
            return  # nothing overtakes it: it runs once those running now have settled
        held = heapq.heappop(state.waiting)
        key = state.flow.key(held.message) if state.flow.key else None
        if key is not None and key in state.parked:
            state.parked[key].append(held)  # behind the message of the same key that runs now
            continue
        if key is not None:
            state.parked[key] = deque()
        _start(state, held, key)


def _start(state: _State[M], held: _Held[M], key: str | None) -> None:
    # Only now does it leave its durable's prefetch: one parked behind its key still counts, so that the messages
    # held never exceed `prefetch` per durable plus those running.
    state.fetched[held.source.durable] -= 1
    state.room.set()
    state.alone = _redelivered(held)
    task = asyncio.create_task(_run(state, held, key), name=f"process {held.msg.subject}")
    state.running.add(task)


async def _run(state: _State[M], held: _Held[M], key: str | None) -> None:
    try:
        await process(state.flow, held.source, held.msg, held.message)
    except asyncio.CancelledError:
        await settle(held.msg, "nak")  # shutdown: another replica takes it now
        raise
    except Exception:  # a bug must not stop the loop: unsettled, the message comes back after ack_wait
        log.exception("processing %s failed", held.msg.subject)
    finally:
        _settled(state, held.msg)
        if _redelivered(held):
            state.redelivered -= 1
            state.alone = False
            state.room.set()
        if key is not None:
            queue = state.parked.get(key)
            if queue and not state.stopping and _may_start(state, queue[0]):
                _start(state, queue.popleft(), key)  # the key's next message takes this one's place
            else:
                # Back to the dispatcher (in the order they were parked in) to wait for their turn.
                for parked in state.parked.pop(key, ()):
                    heapq.heappush(state.waiting, parked)
        state.changed.set()


def _settled(state: _State[M], msg: Msg) -> None:
    """The message and the task that processed it are no longer held (called by that task)."""
    state.held.pop(id(msg), None)
    current = asyncio.current_task()
    if current is not None:
        state.running.discard(current)


async def _fetch_loop(
    state: _State[M], rank: int, source: Source[M], ready: asyncio.Event, stop: asyncio.Event
) -> None:
    """Keep up to `prefetch` messages of one durable waiting locally; subscribe again after any failure."""
    flow = state.flow
    loop = asyncio.get_running_loop()
    subscription: JetStreamContext.PullSubscription | None = None
    idle_since = loop.time()
    found = True  # the first fetch takes what is queued at once
    while not stop.is_set():
        room = flow.prefetch - state.fetched[source.durable]
        if room <= 0 or state.redelivered:
            state.room.clear()
            await _either(state.room, stop)
            continue
        try:
            if subscription is None:
                await flow.declare()
                subscription = await flow.js.pull_subscribe_bind(source.durable, stream=source.stream)
                log.info("consuming %s as %s", source.stream, source.durable)
            if found and not state.recovering:
                messages = await subscription.fetch(batch=room, timeout=TOP_UP_S)
            else:
                messages = await subscription.fetch(batch=1, timeout=LINGER_S)
        except TimeoutError:  # nothing queued (nats.errors.TimeoutError is one too)
            found = False
            ready.set()
            if subscription is not None and loop.time() - idle_since > IDLE_CHECK_S:
                idle_since = loop.time()
                subscription = await _checked(subscription)
            continue
        except Exception as error:  # noqa: BLE001 - the loop outlives any NATS failure
            log.warning("%s: fetch failed (%r); subscribing again", source.durable, error)
            ready.set()  # nothing to wait for on this durable now
            await _dropped(subscription)
            subscription = None
            found = True
            await _either(stop, stop, RESUBSCRIBE_PAUSE_S)
            continue
        found = True
        idle_since = loop.time()
        record_fetch(source.durable, [msg.data for msg in messages])
        for msg in messages:
            state.held[id(msg)] = msg
            state.recovering = msg.metadata.num_delivered > 1
            try:
                if not msg.data:
                    raise msgspec.DecodeError("empty message body")
                message = source.decode(msg.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                reason = f"{source.invalid}: {error}"
                state.running.add(asyncio.create_task(_undecodable(state, source, msg, reason)))
                continue
            held = _Held(rank, next(state.seq), msg, message, source)
            heapq.heappush(state.waiting, held)
            state.fetched[source.durable] += 1
            state.redelivered += _redelivered(held)
        ready.set()
        state.changed.set()
    await _dropped(subscription)


async def _either(event: asyncio.Event, stop: asyncio.Event, timeout_s: float | None = None) -> None:
    """Wait for `event` or `stop` (or the timeout)."""
    waits = [asyncio.create_task(event.wait()), asyncio.create_task(stop.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def first_delivery_link(publisher: Context, deliveries: int) -> list[Link]:
    """On a redelivery, a link naming the message's first delivery: the publisher's span context, whose child
    CONSUMER span with `messaging.message.delivery_count` 1 (and the same consumer group) is that first delivery.

    Derived from the message's own headers, so any replica, even one that never saw the first delivery, links it
    without storing anything; no link on a first delivery or without a traceparent."""
    published = trace.get_current_span(publisher).get_span_context()
    if deliveries <= 1 or not published.is_valid:
        return []
    return [Link(published, {"messaging.message.delivery_count": 1, "assay.link.kind": "redelivery_of"})]


@contextlib.contextmanager
def _consumer_span(msg: Msg, source: Source[M], task_id: str | None) -> Iterator[Span]:
    """The `process <subject>` CONSUMER span of one delivery of a message, continuing its publisher's trace and,
    on a redelivery, linked to the first delivery (`first_delivery_link`)."""
    publisher = extract_context(msg.headers)
    with tracer.start_as_current_span(
        f"process {msg.subject}",
        context=publisher,
        kind=SpanKind.CONSUMER,
        attributes=consumer_attributes(msg, source.durable),
        links=first_delivery_link(publisher, msg.metadata.num_delivered),
    ) as span:
        if task_id:
            span.set_attribute(TASK_ID_ATTRIBUTE, task_id)
        yield span


async def process(flow: Flow[M], source: Source[M], msg: Msg, message: M) -> None:
    """Handle one decoded message in a `process <subject>` CONSUMER span and settle it by its outcome."""
    deliveries = msg.metadata.num_delivered
    task_id = task_id_of(message)
    with _consumer_span(msg, source, task_id) as span:
        span.set_attribute("messaging.message.id", message.event_id)
        delivery = Delivery(deliveries=deliveries, trace_id=trace_id_of(msg.headers))
        try:
            outcome = await flow.handle(message, delivery)
        except Exception as error:  # noqa: BLE001 - any processing error is retried, then given up
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, repr(error)))
            extra = {"task_id": task_id, "deliveries": deliveries}
            if deliveries < flow.max_deliver:
                delay = backoff_s(deliveries)
                log.warning(
                    "processing %s failed (%r); retry in %.0f s", msg.subject, error, delay, extra=extra
                )
                await settle(msg, "nak", delay)
                return
            reason = f"{flow.name} gave up after {deliveries} deliveries: {error}"
            if await _dead_letter(flow, source, msg, reason, task_id):
                await _told(flow, msg, message, reason)
            return
        if isinstance(outcome, Retry) and deliveries >= flow.max_deliver:
            outcome = GiveUp(f"still not applicable after {deliveries} deliveries: {outcome.reason}")
        match outcome:
            case GiveUp(reason=reason):
                span.set_status(Status(StatusCode.ERROR, reason))
                await _dead_letter(flow, source, msg, reason, task_id)
            case Retry(delay_s=delay_s):
                await settle(msg, "nak", delay_s)
            case Ack():
                await settle(msg, "ack")
            case Leave():
                pass  # another holder settles it


async def _undecodable(state: _State[M], source: Source[M], msg: Msg, reason: str) -> None:
    flow = state.flow
    task_id = flow.task_id_hint(msg)
    try:
        with _consumer_span(msg, source, task_id) as span:
            span.set_status(Status(StatusCode.ERROR, reason))
            if await _dead_letter(flow, source, msg, reason, task_id):
                await _told(flow, msg, None, reason)
    finally:
        _settled(state, msg)


async def _told(flow: Flow[M], msg: Msg, message: M | None, reason: str) -> None:
    try:  # best effort: the error that stopped the message may stop this too
        await flow.given_up(msg, message, reason)
    except Exception as error:  # noqa: BLE001 - the DLQ holds the message and its reason
        log.error("after giving %s up: %r", msg.subject, error, extra={"task_id": task_id_of(message)})


async def _dead_letter(flow: Flow[M], source: Source[M], msg: Msg, reason: str, task_id: str | None) -> bool:
    """DLQ, then term; when the DLQ does not take it, nak so that nothing is lost (False)."""
    try:
        await publish_dead_letter(flow.js, msg, source.stream, source.durable, reason, task_id)
    except Exception as error:  # noqa: BLE001 - whatever the cause, the message must not be lost
        log.error("dead letter not published (%r); message kept", error, extra={"task_id": task_id})
        await settle(msg, "nak", backoff_s(msg.metadata.num_delivered))
        return False
    log.error("message on %s sent to the DLQ: %s", msg.subject, reason, extra={"task_id": task_id})
    await settle(msg, "term")
    return True


async def _checked(
    subscription: JetStreamContext.PullSubscription,
) -> JetStreamContext.PullSubscription | None:
    """The subscription if its consumer still exists, else None (so that the fetcher declares it again)."""
    try:
        await subscription.consumer_info()
        return subscription
    except Exception as error:  # noqa: BLE001 - any failure means: subscribe again
        log.warning("consumer check failed (%r); subscribing again", error)
        await _dropped(subscription)
        return None


async def _dropped(subscription: JetStreamContext.PullSubscription | None) -> None:
    if subscription is not None:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
