"""The wire side of the orchestrator: its four priority durables on the shared consumer loop (shared/consuming.py),
and what becomes of a request: run it and ack, leave it to the copy already running, or give it up with a
`failed` event.

Every replica binds the same durables, so JetStream shares the requests between them. Each durable is fetched on
its own into a local priority queue; a replica runs up to settings.tasks_per_orchestrator tasks at once and always
starts the most urgent request it holds, so a queued urgent request is the next one it takes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from services.orchestrator.cancellation import CancelRegistry, cancel_marker
from services.orchestrator.runner import RunContext, run_task, task_fields
from shared import subjects
from shared.config import Settings
from shared.consuming import ACK, LEAVE, Delivery, Envelope, Flow, Outcome, Source, consume
from shared.messages import (
    PRIORITIES,
    TASK_ID_RE,
    AnalysisRequest,
    AnalysisType,
    AppNumber,
    ModelSlug,
    TaskCancelled,
    TaskFailed,
    decode_request,
)
from shared.streams import declare_consumer, declare_streams, orchestrator_consumers

log = logging.getLogger(__name__)

TERMINAL_KINDS = ("completed", "failed", "cancelled")
SOURCES = [
    Source(
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
    await declare_streams(js)
    for config in orchestrator_consumers(settings.ack_wait_s, settings.max_deliver):
        await declare_consumer(js, subjects.REQUESTS_STREAM, config)


def flow(orc: Orchestrator) -> Flow:
    """The orchestrator's side of the shared consumer loop."""

    async def handle_message(message: Envelope, _delivery: Delivery) -> Outcome:
        assert isinstance(message, AnalysisRequest)  # the only thing these durables decode to
        return ACK if await handle(orc, message) == "ack" else LEAVE

    async def given_up(msg: Msg, message: Envelope | None, reason: str) -> None:
        await _publish_failed(orc, msg, message, reason)

    return Flow(
        name="orchestrator",
        js=orc.js,
        sources=SOURCES,
        declare=lambda: declare(orc.js, orc.settings),
        handle=handle_message,
        given_up=given_up,
        max_deliver=orc.settings.max_deliver,
        ack_wait_s=orc.settings.ack_wait_s,
        concurrency=orc.settings.tasks_per_orchestrator,
        prefetch=orc.settings.orchestrator_prefetch,
        task_id_hint=lambda msg: _task_id(msg.data or b""),
    )


async def pull_loop(orc: Orchestrator, stop: asyncio.Event) -> None:
    """Take requests until `stop` is set, then cancel the running ones (their messages are nak'd)."""
    await consume(flow(orc), stop)


async def _publish_failed(orc: Orchestrator, msg: Msg, message: Envelope | None, reason: str) -> None:
    """The `failed` event of a request given up on, when it still names a real task."""
    if isinstance(message, AnalysisRequest):
        await orc.run.publisher.publish(TaskFailed(**task_fields(message), reason=reason))
        return
    named = _salvage(msg.data or b"")
    if named is not None:
        failed = TaskFailed(
            task_id=named.task_id,
            model_slug=named.model_slug,
            app_number=named.app_number,
            analysis_type=named.analysis_type,
            reason=reason,
        )
        await orc.run.publisher.publish(failed)


async def handle(orc: Orchestrator, request: AnalysisRequest) -> Literal["ack", "leave"]:
    """Run the request unless it ended before or was cancelled before it started.

    "leave": this replica already runs the task (the request was redelivered meanwhile); the running copy
    settles the message.
    """
    extra = {"task_id": request.task_id}
    if await has_ended(orc.js, request.task_id):
        log.info("task %s has ended already: request acknowledged", request.task_id, extra=extra)
        return "ack"
    signal = orc.registry.register(request.task_id)
    if signal is None:
        log.warning("task %s runs here already: redelivered request left alone", request.task_id, extra=extra)
        return "leave"
    try:
        marker = await cancel_marker(orc.tasks, request.task_id)
        if marker is not None:
            await orc.run.publisher.publish(TaskCancelled(**task_fields(request), reason=marker.reason))
            log.info("task %s cancelled before it started", request.task_id, extra=extra)
            return "ack"
        await run_task(orc.run, request, signal)
        return "ack"
    finally:
        orc.registry.unregister(request.task_id, signal)


async def has_ended(js: JetStreamContext, task_id: str) -> bool:
    """Whether ASSAY_EVENTS holds a terminal event of the task (a request redelivered after a crash)."""
    for kind in TERMINAL_KINDS:
        try:
            await js.get_last_msg(subjects.EVENTS_STREAM, subjects.event_subject(task_id, kind))
        except NotFoundError:
            continue
        return True
    return False


class _Named(msgspec.Struct):
    """What an invalid request must still hold to name a real task."""

    task_id: str
    model_slug: ModelSlug
    app_number: AppNumber
    analysis_type: AnalysisType


def _salvage(data: bytes) -> _Named | None:
    """The task an invalid request still names: a valid task id, model slug, app number and analysis type (another
    field was wrong). Anything less names no app, so no `failed` event (and no result folder) is made up for it;
    the DLQ keeps it with the reason."""
    try:
        named = msgspec.json.decode(data, type=_Named)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return named if TASK_ID_RE.match(named.task_id) else None


def _task_id(data: bytes) -> str | None:
    """The task id of an otherwise unusable request, for the dead letter and the logs."""
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None
    task_id = raw.get("task_id") if isinstance(raw, dict) else None
    return task_id if isinstance(task_id, str) and TASK_ID_RE.match(task_id) else None
