"""Reading the tables: what the persister knows of a task, and the questions its handlers ask before writing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import msgspec
from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from services.persister import staging
from services.persister.sessions import Sessions, transaction
from services.persister.staging import StagedService
from shared.store.models import ServiceRun, Task
from shared.wire.messages import TERMINAL_STATUSES, as_utc, utcnow
from shared.wire.tasks import AnalysisType, TaskRef


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
    waived_rules: tuple[str, ...] = ()  # what the task's batch asked of the app (shared/results/waivers.py)

    @property
    def finished(self) -> bool:
        """Terminal: nothing more will be written for it. A row is terminal only once its result folder is in
        place (or the disk refused it past the limit: then it is `failed` with that reason and names no folder)."""
        return self.status in TERMINAL_STATUSES


def task_ref_of(task: TaskColumns) -> TaskRef:
    """The identity of a task row (its analysis type checked: a row is written only from a valid message)."""
    return TaskRef(
        id=task.task_id,
        model_slug=task.model_slug,
        app_number=task.app_number,
        analysis_type=msgspec.convert(task.analysis_type, AnalysisType),
    )


class TaskColumns(Protocol):
    """What a snapshot is taken of: a task row (ORM), or the same columns read with Core (`SNAPSHOT_COLUMNS`)."""

    @property
    def task_id(self) -> str: ...

    @property
    def model_slug(self) -> str: ...

    @property
    def app_number(self) -> int: ...

    @property
    def analysis_type(self) -> str: ...

    @property
    def priority(self) -> str: ...

    @property
    def tools(self) -> list[str] | None: ...

    @property
    def services(self) -> list[str] | None: ...

    @property
    def status(self) -> str: ...

    @property
    def status_reason(self) -> str | None: ...

    @property
    def created_at(self) -> datetime | None: ...

    @property
    def started_at(self) -> datetime | None: ...

    @property
    def worker(self) -> str | None: ...

    @property
    def trace_id(self) -> str | None: ...

    @property
    def result_dir(self) -> str | None: ...

    @property
    def updated_at(self) -> datetime | None: ...

    @property
    def waived_rules(self) -> list[str] | None: ...


# The columns of a snapshot, read with Core: those the protocol names, in its order.
SNAPSHOT_COLUMNS = tuple(name for name, value in vars(TaskColumns).items() if isinstance(value, property))


def snapshot_of(task: TaskColumns) -> TaskSnapshot:
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
        waived_rules=tuple(task.waived_rules or ()),
    )


# The reads of a message's handling run as units of the persister's group commit (services/persister/sessions.py):
# in its writer thread, after the writes of the task's earlier messages.


# The columns a snapshot needs, read with Core: the ORM's `Session.get` cost about a tenth of the persister's CPU
# at saturation (identity map, instance state) for a row that is only copied into a snapshot.
_TASKS: Table = Task.__table__  # type: ignore[assignment]
_TASK = select(*(_TASKS.c[name] for name in SNAPSHOT_COLUMNS)).where(_TASKS.c.task_id == bindparam("task_id"))
_STAGED = select(ServiceRun.service, ServiceRun.staged_result).where(
    ServiceRun.task_id == bindparam("task_id")
)


def read_task(session: Session, task_id: str) -> TaskSnapshot | None:
    """The task's record, read in the unit of `session`; None when it has no row."""
    row = session.connection().execute(_TASK, {"task_id": task_id}).one_or_none()
    return snapshot_of(row) if row is not None else None  # a Row has the columns as attributes


async def load_task(sessions: Sessions, task_id: str) -> TaskSnapshot | None:
    """The task's record, None when it has no row."""
    return await transaction(sessions, lambda session: read_task(session, task_id))


async def task_and_services(
    sessions: Sessions, task_id: str
) -> tuple[TaskSnapshot | None, dict[str, StagedService | None]]:
    """The task's record and the services whose outcome is in the database for it, in one transaction: each with
    its staged outcome (None once the task has ended and its folder holds it)."""

    def read(session: Session) -> tuple[TaskSnapshot | None, dict[str, StagedService | None]]:
        task = read_task(session, task_id)
        if task is None:
            return None, {}
        rows = session.connection().execute(_STAGED, {"task_id": task_id}).all()
        return task, {service: staging.decode(data) if data else None for service, data in rows}

    return await transaction(sessions, read)


async def stale_tasks(sessions: Sessions, status: str, older_than: datetime) -> list[str]:
    """Ids of tasks in `status` with no update since `older_than`."""
    async with sessions() as session:
        query = select(Task.task_id).where(Task.status == status, Task.updated_at < older_than)
        return list((await session.scalars(query)).all())
