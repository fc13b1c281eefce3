"""What each message changes: one function per message kind, knowing nothing of NATS acks.

A handler returns the message's `Outcome` (shared/jetstream/consuming.py): `ACK` when it is done with, a `Retry` when it should
come back later, a `GiveUp` when no retry can fix it; an exception is a processing error the consumer retries.
"""

from __future__ import annotations

import logging

import msgspec

from services.persister import database, staging
from services.persister.artifacts import InvalidArtifact, load_result
from services.persister.completion import (
    PersisterContext,
    db_write_span,
    finish_held,
    present_services,
    task_and_services,
)
from services.persister.document import Ending
from services.persister.staging import StagedService, check_service_name
from shared.jetstream.consuming import ACK, Delivery, GiveUp, Outcome, Retry
from shared.jetstream.delivery import backoff_s
from shared.operations.errors import StorageError
from shared.results.findings import with_fingerprints
from shared.store.paths import UnsafePathError
from shared.telemetry.metrics import timed_db_write
from shared.wire.messages import (
    AnalysisRequest,
    Event,
    ServiceFinished,
    TaskProgress,
    TaskStarted,
    TerminalEvent,
    as_utc,
    event_kind,
    terminal_status,
)

log = logging.getLogger(__name__)


async def handle_request(ctx: PersisterContext, request: AnalysisRequest, delivery: Delivery) -> Outcome:
    """An accepted request: the task exists from now on, as `pending`."""
    with timed_db_write(ctx.db_system, "request"):
        await database.record_request(ctx.sessions, request, delivery.trace_id)
    # DEBUG, like the line of each service: at saturation an INFO line per message costs the persister a few per
    # cent of its CPU; the task's ending (`finish_held`) stays at INFO, so each task still has its one line.
    log.debug("task %s recorded as pending", request.task.id, extra={"task_id": request.task.id})
    return ACK


async def handle_event(ctx: PersisterContext, event: Event, delivery: Delivery) -> Outcome:
    """Apply one event of the tagged union. Applying one twice changes nothing (no lookup of processed events on
    the hot path): `started` never moves a task back, a `service` event replaces its rows and is ignored once the
    task has finished, and a terminal event of a finished task is only acknowledged."""
    match event:
        case TaskStarted():
            with timed_db_write(ctx.db_system, "started"):
                await database.record_started(ctx.sessions, event, delivery.trace_id)
            return ACK
        case TaskProgress():
            with timed_db_write(ctx.db_system, "progress"):
                await database.record_progress(ctx.sessions, event)
            return ACK
        case ServiceFinished():
            return await _service_finished(ctx, event, delivery)
        case _:
            return await _terminal(ctx, event, delivery)


async def _service_finished(ctx: PersisterContext, event: ServiceFinished, delivery: Delivery) -> Outcome:
    extra = {"task_id": event.task.id, "analyzer": event.service}
    try:
        check_service_name(event.service)
        result = event.result
        if result is None and event.artifact is not None:
            result = await load_result(ctx.js, event.artifact)
    except (UnsafePathError, InvalidArtifact) as error:
        return GiveUp(f"invalid message: {error}")
    if result is not None:
        result = msgspec.structs.replace(result, findings=with_fingerprints(result.findings))
    if result is None or (not result.tools and not result.findings):
        log.warning(
            "empty payload: service %s of task %s reported no tools and no findings (status %s)",
            event.service,
            event.task.id,
            event.status,
            extra=extra,
        )
    staged = StagedService(
        service=event.service,
        status=event.status,
        error=event.error or (result.error if result else None),
        event_id=event.event_id,
        result=result,
    )
    # Staged with the rows, in one transaction: once the event counts as processed its full result is stored.
    with db_write_span(ctx, "service", event.task.id):
        recorded = await database.record_service(
            ctx.sessions,
            event,
            result,
            delivery.trace_id,
            unless_finished=True,
            staged=staging.encode(staged),
        )
    if not recorded:
        # A retried orchestrator may send a task's events again after it ended: its folder is final.
        log.info("service %s of finished task %s ignored", event.service, event.task.id, extra=extra)
        return ACK
    count = len(result.findings) if result else 0
    log.debug("service %s of task %s recorded: %d findings", event.service, event.task.id, count, extra=extra)
    return ACK


def _ending(event: TerminalEvent, missing: list[str]) -> Ending:
    status, reason = terminal_status(event), event.reason
    if missing:
        note = f"no result was received from {', '.join(missing)}"
        reason = f"{reason}; {note}" if reason else note
        if status == "completed":
            status = "partial"
    finished_at = as_utc(event.occurred_at)
    return Ending(status=status, reason=reason, finished_at=finished_at, app=event.app)


def missing_service_wait_s(ack_wait_s: float, margin_s: float, max_deliver: int, deliveries: int) -> float:
    """How long a terminal event waits for its missing service events before its next delivery.

    Long enough in all that a service event JetStream delivered but that never arrived (lost in flight when a
    cluster node died, or a connection dropped) is delivered again first: that happens only after `ack_wait`. The
    terminal event is held back `max_deliver - 2` times, so each wait is a share of ack_wait plus `margin_s` (a
    redelivered event is fetched at once and is one small write)."""
    holds = max(1, max_deliver - 2)
    return max(backoff_s(deliveries), (ack_wait_s + margin_s) / holds)


async def _terminal(ctx: PersisterContext, event: TerminalEvent, delivery: Delivery) -> Outcome:
    extra = {"task_id": event.task.id}
    # Held from the first read on, so that this read is the one `finish_held` writes from.
    async with ctx.finishing.hold(event.task.id):
        task, recorded = await task_and_services(ctx, event.task.id, event)
        if task is None:  # recorded just now: only a database that lost it can say so
            raise StorageError(f"task {event.task.id} has no row after it was recorded")
        if task.finished:
            log.info("task %s has ended already in %s", event.task.id, task.result_dir, extra=extra)
            return ACK
        present = present_services(recorded)
        missing = [service for service in event.services if service not in present]
        if missing and delivery.deliveries < ctx.max_deliver - 1:
            # Redelivery may have put a service event behind its task's end: come back once it had time to arrive.
            reason = f"waiting for the service events of {', '.join(missing)}"
            log.info("task %s: %s", event.task.id, reason, extra=extra)
            wait_s = missing_service_wait_s(
                ctx.ack_wait_s, ctx.redelivery_margin_s, ctx.max_deliver, delivery.deliveries
            )
            return Retry(delay_s=wait_s, reason=reason)
        if missing:
            log.warning("task %s ends without %s", event.task.id, ", ".join(missing), extra=extra)
        ending = _ending(event, missing)
        await finish_held(ctx, task, ending, list(present.values()), event.event_id, event_kind(event))
    return ACK
