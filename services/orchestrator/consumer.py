"""The wire side of the orchestrator: its four priority durables on the shared consumer loop (shared/jetstream/consuming.py),
and what becomes of a request: run it and ack, leave it to the copy already running, or give it up with a
`failed` event.

Every replica binds the same durables, so JetStream shares the requests between them. Each durable is fetched on
its own into a local priority queue; a replica runs up to settings.tasks_per_orchestrator tasks at once and always
starts the most urgent request it holds, so a queued urgent request is the next one it takes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from services.orchestrator.cancellation import CancelRegistry, cancel_marker
from services.orchestrator.runner import RunContext, run_task
from shared.jetstream.consuming import ACK, LEAVE, Delivery, Flow, Outcome, Source
from shared.jetstream.streams import declare_consumer, declare_streams, orchestrator_consumers
from shared.operations.config import Settings
from shared.wire import subjects
from shared.wire.messages import (
    PRIORITIES,
    TERMINAL_KINDS,
    AnalysisRequest,
    TaskCancelled,
    TaskFailed,
    decode_request,
)
from shared.wire.tasks import task_id_hint, task_ref_hint

log = logging.getLogger(__name__)

SOURCES = [
    Source[AnalysisRequest](
        subjects.REQUESTS_STREAM, subjects.orchestrator_durable(priority), decode_request, "invalid request"
    )
    for priority in PRIORITIES
]


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
    await declare_streams(js, settings.jetstream)
    for config in orchestrator_consumers(settings.ack_wait_s, settings.max_deliver):
        await declare_consumer(js, subjects.REQUESTS_STREAM, config)


def flow(orc: Orchestrator) -> Flow[AnalysisRequest]:
    """The orchestrator's side of the shared consumer loop."""

    async def given_up(msg: Msg, message: AnalysisRequest | None, reason: str) -> None:
        # A request invalid elsewhere that still names a whole task (id, app, type) gets its `failed` event; anything
        # less names no app, so none (and no result folder) is made up for it: the DLQ keeps it with the reason.
        task = message.task if message is not None else task_ref_hint(msg.data)
        if task is not None:
            await orc.run.publisher.publish(TaskFailed(task=task, reason=reason))

    return Flow(
        name="orchestrator",
        js=orc.js,
        sources=SOURCES,
        declare=lambda: declare(orc.js, orc.settings),
        handle=partial(handle, orc),
        given_up=given_up,
        max_deliver=orc.settings.max_deliver,
        ack_wait_s=orc.settings.ack_wait_s,
        concurrency=orc.settings.tasks_per_orchestrator,
        prefetch=orc.settings.orchestrator_prefetch,
        task_id_hint=lambda msg: task_id_hint(msg.data),
    )


async def handle(orc: Orchestrator, request: AnalysisRequest, _delivery: Delivery) -> Outcome:
    """Run the request unless it ended before or was cancelled before it started.

    LEAVE: this replica already runs the task (the request was redelivered meanwhile); the running copy settles
    the message.
    """
    extra = {"task_id": request.task.id}
    # Registered before asking whether the task ended: a copy running here publishes its terminal event before it
    # unregisters, so a redelivered copy either finds it running or finds its terminal event. Asked the other way
    # round, a copy could ask while the first was finishing and register once it had finished: the task ran twice.
    signal = orc.registry.register(request.task.id)
    if signal is None:
        log.warning("task %s runs here already: redelivered request left alone", request.task.id, extra=extra)
        return LEAVE
    try:
        if await has_ended(orc.js, request.task.id):
            log.info("task %s has ended already: request acknowledged", request.task.id, extra=extra)
            return ACK
        marker = await cancel_marker(orc.tasks, request.task.id)
        if marker is not None:
            await orc.run.publisher.publish(TaskCancelled(task=request.task, reason=marker.reason))
            log.info("task %s cancelled before it started", request.task.id, extra=extra)
            return ACK
        await run_task(orc.run, request, signal)
        return ACK
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
