"""The wire side of the persister: its durables on the shared consumer loop (shared/jetstream/consuming.py) — every request,
every event, and JetStream's max-deliveries advisories (services/persister/exhausted.py) — and what a handler's
answer means for the message. Messages of one task are applied one after another, in the order they were fetched;
different tasks are applied concurrently.
"""

from __future__ import annotations

from functools import partial

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from services.persister.completion import PersisterContext, fail_task
from services.persister.exhausted import handle_exhausted
from services.persister.handlers import handle_event, handle_request
from shared.jetstream.advisories import MaxDeliveries, decode_max_deliveries
from shared.jetstream.consuming import ACK, Delivery, Flow, Outcome, Source, task_id_of
from shared.jetstream.streams import declare_consumer, declare_streams, persister_consumers
from shared.operations.config import JetStreamLayout, Settings
from shared.wire import subjects
from shared.wire.messages import AnalysisRequest, Event, TaskEvent, decode_event, decode_request
from shared.wire.tasks import task_id_hint

PersisterMessage = AnalysisRequest | Event | MaxDeliveries  # what the persister's durables decode to

SOURCES: tuple[Source[PersisterMessage], ...] = (
    Source(subjects.REQUESTS_STREAM, subjects.PERSISTER_REQUESTS_DURABLE, decode_request),
    Source(subjects.EVENTS_STREAM, subjects.PERSISTER_EVENTS_DURABLE, decode_event),
    Source(
        subjects.ADVISORIES_STREAM,
        subjects.PERSISTER_ADVISORIES_DURABLE,
        decode_max_deliveries,
        "invalid advisory",
    ),
)


async def declare(js: JetStreamContext, ack_wait_s: float, max_deliver: int, layout: JetStreamLayout) -> None:
    """Streams and the persister's durables (idempotent; run at start and whenever a fetcher re-subscribes)."""
    await declare_streams(js, layout)
    for stream, config in persister_consumers(ack_wait_s, max_deliver):
        await declare_consumer(js, stream, config)


async def handle(ctx: PersisterContext, message: PersisterMessage, delivery: Delivery) -> Outcome:
    """Apply one request, event or advisory."""
    match message:
        case MaxDeliveries():
            await handle_exhausted(ctx, message)
            return ACK
        case AnalysisRequest():
            return await handle_request(ctx, message, delivery)
        case _:
            return await handle_event(ctx, message, delivery)


def flow(ctx: PersisterContext, settings: Settings) -> Flow[PersisterMessage]:
    """The persister's side of the shared consumer loop."""

    async def given_up(_msg: Msg, message: PersisterMessage | None, reason: str) -> None:
        task_id = task_id_of(message)
        if task_id is not None:
            await fail_task(ctx, task_id, reason, message if isinstance(message, TaskEvent) else None)

    return Flow(
        name="persister",
        js=ctx.js,
        sources=SOURCES,
        declare=lambda: declare(ctx.js, ctx.ack_wait_s, ctx.max_deliver, settings.jetstream),
        handle=partial(handle, ctx),
        given_up=given_up,
        max_deliver=ctx.max_deliver,
        ack_wait_s=ctx.ack_wait_s,
        concurrency=settings.persister_concurrency,
        prefetch=settings.persister_prefetch,
        key=task_id_of,
        task_id_hint=lambda msg: task_id_hint(msg.data, msg.subject),
    )
