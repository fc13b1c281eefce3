"""Reading the tables: what the persister knows of a task, and the questions its handlers ask before writing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.persister import staging
from services.persister.sessions import Sessions, transaction
from services.persister.staging import StagedService
from shared.messages import TERMINAL_STATUSES, utcnow
from shared.models import ServiceRun, Task
from shared.tasks import AnalysisType, TaskRef


@dataclass(frozen=True)
class TaskSnapshot:
    """What the persister knows of one task (a detached copy of its row)."""

    task: TaskRef
    priority: str
    tools: list[str]
    services: list[str]
    status: str
    status_reason: str | None
    created_at: datetime
    started_at: datetime | None
    worker: str | None
    trace_id: str | None
    result_dir: str | None
    updated_at: datetime | None = None

    @property
    def finished(self) -> bool:
        """Terminal: nothing more will be written for it."""
        return has_finished(self.status)


def has_finished(status: str) -> bool:
    """A task row is terminal only once its result folder is in place (or the disk refused it past the limit:
    then it is `failed` with that reason and names no folder); nothing more will be written for it."""
    return status in TERMINAL_STATUSES


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; everything Assay stores is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def task_ref_of(task: Task) -> TaskRef:
    """The identity of a task row (its analysis type checked: a row is written only from a valid message)."""
    return TaskRef(
        id=task.task_id,
        model_slug=task.model_slug,
        app_number=task.app_number,
        analysis_type=msgspec.convert(task.analysis_type, AnalysisType),
    )


def snapshot_of(task: Task) -> TaskSnapshot:
    return TaskSnapshot(
        task=task_ref_of(task),
        priority=task.priority,
        tools=list(task.tools or []),
        services=list(task.services or []),
        status=task.status,
        status_reason=task.status_reason,
        created_at=as_utc(task.created_at) or utcnow(),
        started_at=as_utc(task.started_at),
        worker=task.worker,
        trace_id=task.trace_id,
        result_dir=task.result_dir,
        updated_at=as_utc(task.updated_at),
    )


# The reads of a message's handling run as units of the persister's group commit (services/persister/sessions.py):
# in its writer thread, after the writes of the task's earlier messages.


async def load_task(sessions: Sessions, task_id: str) -> TaskSnapshot | None:
    """The task's record, None when it has no row."""

    def read(session: Session) -> TaskSnapshot | None:
        task = session.get(Task, task_id)
        return snapshot_of(task) if task is not None else None

    return await transaction(sessions, read)


async def task_and_services(
    sessions: Sessions, task_id: str
) -> tuple[TaskSnapshot | None, dict[str, StagedService | None]]:
    """The task's record and the services whose outcome is in the database for it, in one transaction: each with
    its staged outcome (None once the task has ended and its folder holds it)."""

    def read(session: Session) -> tuple[TaskSnapshot | None, dict[str, StagedService | None]]:
        task = session.get(Task, task_id)
        if task is None:
            return None, {}
        query = select(ServiceRun.service, ServiceRun.staged_result).where(ServiceRun.task_id == task_id)
        rows = session.execute(query).all()
        return snapshot_of(task), {service: staging.decode(data) if data else None for service, data in rows}

    return await transaction(sessions, read)


async def stale_tasks(sessions: Sessions, status: str, older_than: datetime) -> list[str]:
    """Ids of tasks in `status` with no update since `older_than`."""
    async with sessions() as session:
        query = select(Task.task_id).where(Task.status == status, Task.updated_at < older_than)
        return list((await session.scalars(query)).all())
