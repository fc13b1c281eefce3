"""Finishing a task: its result folder first, then its row (which drops the staged outcomes of its services).

The order is what keeps the database and the files in agreement: a task is terminal in the database only once its
folder is complete and renamed into place, and the row names that folder. Used for every terminal event, by the
reaper, and when a message about a task has to be given up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from nats.js import JetStreamContext
from opentelemetry import trace

from services.persister import database, document, folders, lookups
from services.persister.database import TaskEnd
from services.persister.disk import ResultsUnwritable, persistently
from services.persister.document import Ending, RenderedResult
from services.persister.judgement import judge
from services.persister.locks import TaskLocks
from services.persister.lookups import TaskSnapshot
from services.persister.sessions import Sessions
from services.persister.staging import StagedService
from shared.store.paths import result_dir, result_folder_name
from shared.telemetry.metrics import record_task_ended, timed_db_write
from shared.telemetry.tracing import TASK_ID_ATTRIBUTE
from shared.wire.messages import TaskEvent, utcnow

log = logging.getLogger(__name__)
tracer = trace.get_tracer("services.persister")


@dataclass(frozen=True)
class PersisterContext:
    """What the persister's handlers work with, passed explicitly to every one (nothing lives in module globals):
    the database, the results root, JetStream and the limits."""

    js: JetStreamContext
    sessions: Sessions
    results_root: Path
    max_deliver: int  # deliveries of one message before it goes to the DLQ
    # ASSAY_REDELIVERY_MARGIN_S: a redelivered service event is applied within this much after ack_wait
    redelivery_margin_s: float
    ack_wait_s: float = 30.0  # long work sends in_progress() well within it
    db_system: str = "sqlite"  # OTel `db.system` of the engine (sqlite, postgresql)
    # ASSAY_RESULTS_WRITE_LIMIT_S: how long a refused results write is tried again
    write_limit_s: float = 300.0
    # Finishing a task (folder, then row) runs under its task's lock so the reaper and the event consumer of one
    # process never finish the same task twice at once; different tasks finish concurrently.
    finishing: TaskLocks = field(default_factory=TaskLocks)


@contextmanager
def db_write_span(
    ctx: PersisterContext, what: str, task_id: str, attributes: dict[str, str] | None = None
) -> Iterator[None]:
    """A `db.write <what>` span and a duration measurement around one database write of a task's results (its
    findings, its outcome). The small status writes (request, started, progress) are measured only: their
    `process` span is already little more than the write, and a span costs more CPU than such a write."""
    span_attributes = {TASK_ID_ATTRIBUTE: task_id, "db.system": ctx.db_system, **(attributes or {})}
    with (
        tracer.start_as_current_span(f"db.write {what}", attributes=span_attributes),
        timed_db_write(ctx.db_system, what),
    ):
        yield


def present_services(recorded: dict[str, StagedService | None]) -> dict[str, StagedService]:
    """Of the services recorded for a live task, those whose whole outcome is staged for its folder."""
    return {name: staged for name, staged in recorded.items() if staged is not None}


def _final_folder(ctx: PersisterContext, task: TaskSnapshot, folder_name: str) -> tuple[Path, str]:
    """The task's result folder, and the same relative to the results root (resolving stats the disk)."""
    final = result_dir(ctx.results_root, task.task.model_slug, task.task.app_number, folder_name)
    return final, final.relative_to(ctx.results_root.resolve()).as_posix()


async def finish(
    ctx: PersisterContext,
    task: TaskSnapshot,
    ending: Ending,
    services: list[StagedService],
    event_id: str | None = None,
    kind: str = "completed",
) -> str | None:
    """Write the task's result folder, then record the ending; returns the folder relative to the results root.

    When the task was finished already (by a duplicate event, the reaper, another replica) nothing is written and
    the folder already recorded is returned. When the disk refuses the folder past ASSAY_RESULTS_WRITE_LIMIT_S,
    the task is recorded `failed` with the reason and no folder (None).
    """
    async with ctx.finishing.hold(task.task.id):
        current = await lookups.load_task(ctx.sessions, task.task.id) or task
        return await finish_held(ctx, current, ending, services, event_id, kind)


async def finish_held(
    ctx: PersisterContext,
    current: TaskSnapshot,
    ending: Ending,
    services: list[StagedService],
    event_id: str | None = None,
    kind: str = "completed",
) -> str | None:
    """`finish`, for a caller that holds the task's lock and read `current` while holding it."""
    if current.finished:
        return current.result_dir
    if ending.verdicts is None:  # judged once, here, where the task's whole result is at hand
        ending = dataclasses.replace(ending, verdicts=judge(current, ending, services))
    folder_name = result_folder_name(current.task.analysis_type, current.task.id, current.created_at)
    # One hand-off to a thread for both (each costs about as much CPU as a small statement).
    (final, relative), rendered = await asyncio.to_thread(
        lambda: (_final_folder(ctx, current, folder_name), document.render(current, ending, services))
    )
    recorded_dir: str | None = relative
    try:
        await write_rendered(current.task.id, final, relative, rendered, ctx.write_limit_s)
    except ResultsUnwritable as error:
        # Nothing of the folder is visible (each attempt is atomic); the task ends failed, naming no folder, and
        # `assay fsck --repair` can write it from the database once the disk takes it.
        log.error("task %s failed: %s", current.task.id, error, extra={"task_id": current.task.id})
        reason = f"results folder not written: {error}"
        ending = dataclasses.replace(
            ending,
            status="failed",
            reason=f"{reason}; {ending.reason}" if ending.reason else reason,
            app=None,
        )
        recorded_dir, kind = None, "failed"
    end = TaskEnd(
        status=ending.status,
        reason=ending.reason,
        finished_at=ending.finished_at,
        findings_count=rendered.findings_count,
        severity_breakdown=rendered.severity_breakdown,
        result_dir=recorded_dir,
        verdicts=msgspec.to_builtins(ending.verdicts),
    )
    with db_write_span(ctx, "outcome", current.task.id, {"db.operation": "UPDATE"}):
        recorded = await database.record_end(ctx.sessions, current.task.id, end, event_id, kind)
    if recorded:
        duration_s = (ending.finished_at - current.created_at).total_seconds()
        record_task_ended(current.task.analysis_type, ending.status, duration_s)
        log.info(
            "task %s %s: %d findings in %s",
            current.task.id,
            ending.status,
            rendered.findings_count,
            recorded_dir,
            extra={"task_id": current.task.id, "status": ending.status},
        )
    return recorded_dir


async def write_rendered(
    task_id: str, final: Path, relative: str, rendered: RenderedResult, limit_s: float
) -> bool:
    """Write a rendered result as the folder `final` (`relative` to the results root), atomically, trying again
    while the disk refuses for up to `limit_s` (then ResultsUnwritable). False when `final` existed already.
    The one writer of result folders: finishing a task and `assay fsck --repair` both come here."""
    attributes = {TASK_ID_ATTRIBUTE: task_id, "assay.result_dir": relative}
    with tracer.start_as_current_span("results.write", attributes=attributes) as span:
        written = await persistently(
            f"result folder {relative} not written",
            lambda: folders.write_folder(final, rendered.files),
            limit_s,
            task_id,
        )
        span.set_attribute("assay.files", len(rendered.files))
        span.set_attribute("assay.folder_existed", not written)
    if not written:
        # A crash between the rename and the row update left a complete folder: keep it, record it.
        log.info("result folder %s exists already; recording it", relative, extra={"task_id": task_id})
    return written


async def task_and_services(
    ctx: PersisterContext, task_id: str, event: TaskEvent | None = None
) -> tuple[TaskSnapshot | None, dict[str, StagedService | None]]:
    """The task's record and the outcomes of its services (`lookups.task_and_services`); with `event`, a task that
    has no row yet is first recorded as `pending` from what the event carries."""
    found = await lookups.task_and_services(ctx.sessions, task_id)
    if found[0] is None and event is not None:
        await database.record_pending(ctx.sessions, event)
        found = await lookups.task_and_services(ctx.sessions, task_id)
    return found


async def fail_task(ctx: PersisterContext, task_id: str, reason: str, event: TaskEvent | None = None) -> None:
    """End the task as `failed` with `reason` (and a result folder), unless it has ended already."""
    task, recorded = await task_and_services(ctx, task_id, event)
    if task is None:
        log.warning("cannot fail unknown task %s: %s", task_id, reason, extra={"task_id": task_id})
        return
    if task.finished:
        return
    services = present_services(recorded)
    await finish(ctx, task, Ending("failed", reason, utcnow()), list(services.values()), kind="failed")
