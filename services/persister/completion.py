"""Finishing a task: its result folder first, then its row, then the staging is dropped.

The order is what keeps the database and the files in agreement: a task is terminal in the database only once its
folder is complete and renamed into place, and the row names that folder. Used for every terminal event, by the
reaper, and when a message about a task has to be given up.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from nats.js import JetStreamContext
from opentelemetry import trace

from services.persister import database, document, folders, lookups, staging
from services.persister.database import Outcome
from services.persister.document import Ending
from services.persister.locks import TaskLocks
from services.persister.lookups import TaskSnapshot
from services.persister.sessions import Sessions
from services.persister.staging import StagedService
from shared.messages import TaskEvent, utcnow
from shared.metrics import record_task_ended, timed_db_write
from shared.paths import result_dir, result_folder_name
from shared.tracing import TASK_ID_ATTRIBUTE

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
    ack_wait_s: float = 30.0  # long work sends in_progress() well within it
    db_system: str = "sqlite"  # OTel `db.system` of the engine (sqlite, postgresql)
    # Finishing a task (folder, then row) runs under its task's lock so the reaper and the event consumer of one
    # process never finish the same task twice at once; different tasks finish concurrently.
    finishing: TaskLocks = field(default_factory=TaskLocks)


async def present_services(
    ctx: PersisterContext, task_id: str, recorded: set[str]
) -> dict[str, StagedService]:
    """Services whose outcome is both staged (for the folder) and `recorded` (in the database)."""
    staged = await staging.staged_services(ctx.results_root, task_id)
    return {name: item for name, item in staged.items() if name in recorded}


def _final_folder(ctx: PersisterContext, task: TaskSnapshot, folder_name: str) -> tuple[Path, str]:
    """The task's result folder, and the same relative to the results root (resolving stats the disk)."""
    final = result_dir(ctx.results_root, task.task.model_slug, task.task.app_number, folder_name)
    return final, final.relative_to(ctx.results_root.resolve()).as_posix()


def _write_result(
    ctx: PersisterContext, task: TaskSnapshot, ending: Ending, services: list[StagedService]
) -> tuple[str, document.RenderedResult, bool]:
    """In a worker thread, all at once (one hand-off): the folder's path, its files rendered and written; the
    path relative to the results root, the files, and False when the folder existed already."""
    folder_name = result_folder_name(task.task.analysis_type, task.task.id, task.created_at)
    final, relative = _final_folder(ctx, task, folder_name)
    rendered = document.render(task, ending, services)
    return relative, rendered, folders.write(final, rendered.files)


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
    the folder already recorded is returned.
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
        await staging.discard(ctx.results_root, current.task.id)
        return current.result_dir
    with tracer.start_as_current_span(
        "results.write", attributes={TASK_ID_ATTRIBUTE: current.task.id}
    ) as span:
        relative, rendered, written = await asyncio.to_thread(_write_result, ctx, current, ending, services)
        span.set_attribute("assay.result_dir", relative)
        span.set_attribute("assay.files", len(rendered.files))
        span.set_attribute("assay.folder_existed", not written)
    if not written:
        # A crash between the rename and the row update left a complete folder: keep it, record it.
        log.info(
            "result folder %s exists already; recording it", relative, extra={"task_id": current.task.id}
        )
    outcome = Outcome(
        status=ending.status,
        reason=ending.reason,
        finished_at=ending.finished_at,
        findings_count=rendered.findings_count,
        severity_breakdown=rendered.severity_breakdown,
        result_dir=relative,
    )
    db_attributes = {
        TASK_ID_ATTRIBUTE: current.task.id,
        "db.system": ctx.db_system,
        "db.operation": "UPDATE",
    }
    with (
        tracer.start_as_current_span("db.write outcome", attributes=db_attributes),
        timed_db_write(ctx.db_system, "outcome"),
    ):
        recorded = await database.record_outcome(ctx.sessions, current.task.id, outcome, event_id, kind)
    await staging.discard(ctx.results_root, current.task.id)
    if recorded:
        duration_s = (ending.finished_at - current.created_at).total_seconds()
        record_task_ended(current.task.analysis_type, ending.status, duration_s)
        log.info(
            "task %s %s: %d findings in %s",
            current.task.id,
            ending.status,
            rendered.findings_count,
            relative,
            extra={"task_id": current.task.id, "status": ending.status},
        )
    return relative


async def fail_task(ctx: PersisterContext, task_id: str, reason: str, event: TaskEvent | None = None) -> None:
    """End the task as `failed` with `reason` (and a result folder), unless it has ended already."""
    task, recorded = await lookups.task_and_services(ctx.sessions, task_id)
    if task is None and event is not None:
        task = await database.ensure_task(ctx.sessions, event)
    if task is None:
        log.warning("cannot fail unknown task %s: %s", task_id, reason, extra={"task_id": task_id})
        return
    if task.finished:
        return
    services = await present_services(ctx, task_id, recorded)
    await finish(ctx, task, Ending("failed", reason, utcnow()), list(services.values()), kind="failed")
