"""What a batch is: the request body, the record kept in the tasks bucket, and the choice of its tasks.

Plain functions: the selection of apps is made from the app folders found on disk, the progress from task rows.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated

import msgspec
from sqlalchemy import select

from services.gateway.api.app_folders import AppFolder
from services.gateway.queries import Sessions
from services.gateway.schemas import ToolName
from shared.results.waivers import MAX_WAIVERS, Waiver
from shared.store.models import Task
from shared.wire.catalog import TOOLS_BY_SERVICE, offered_tools, unknown_tools
from shared.wire.messages import BATCH_ID_PATTERN, TERMINAL_STATUSES, Priority, TaskStatus, utcnow
from shared.wire.options import Flag
from shared.wire.tasks import AnalysisType, AppNumber, ModelSlug

BatchId = Annotated[str, msgspec.Meta(pattern=BATCH_ID_PATTERN)]
STATUSES: tuple[TaskStatus, ...] = ("pending", "running", "completed", "partial", "failed", "cancelled")


class BatchRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /api/batches`: every chosen app of every chosen model, once per analysis type."""

    models: Annotated[list[ModelSlug], msgspec.Meta(max_length=256)] = []  # empty: every model
    apps: Annotated[list[AppNumber], msgspec.Meta(max_length=1000)] = []  # empty: every app of each model
    analysis_types: Annotated[list[AnalysisType], msgspec.Meta(min_length=1, max_length=6)]
    tools: Annotated[list[ToolName], msgspec.Meta(max_length=64)] = []
    priority: Priority = "normal"
    # What the study's task required of the apps (`bandit:B104`, `CWE-605`): counted in no verdict or figure.
    waived_rules: Annotated[list[Waiver], msgspec.Meta(max_length=MAX_WAIVERS)] = []
    fresh: Flag = False  # run every tool again, reusing no stored run (`options.fresh` of each task)


class BatchTask(msgspec.Struct, frozen=True, kw_only=True):
    task_id: str
    model_slug: str
    app_number: int
    analysis_type: AnalysisType


class BatchRecord(msgspec.Struct, frozen=True, kw_only=True):
    """`batch.<batch_id>` in the tasks bucket: the batch's tasks, known before any of them is recorded."""

    batch_id: str
    created_at: datetime = msgspec.field(default_factory=utcnow)
    tasks: list[BatchTask]
    waived_rules: list[str] = []


class BatchTaskView(msgspec.Struct, frozen=True, kw_only=True):
    task_id: str
    model_slug: str
    app_number: int
    analysis_type: str
    status: str
    findings_count: int


class BatchProgress(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `GET /api/batches/{batch_id}` and each frame of its event stream."""

    batch_id: str
    created_at: datetime
    total: int
    done: int  # tasks in a terminal status
    percent: float
    finished: bool
    by_status: dict[str, int]
    by_model: dict[str, dict[str, int]]  # model -> status -> tasks
    tasks: list[BatchTaskView]
    waived_rules: list[str] = []


class Selection(msgspec.Struct, frozen=True, kw_only=True):
    apps: list[tuple[str, int]]
    missing: list[str]  # `<model>/app<N>` named by the request but not under the apps root


def batch_problem(request: BatchRequest) -> tuple[str, str] | None:
    """(field, reason) when the request names a tool that one of its analysis types does not offer, or waives a
    rule of a tool Assay does not have."""
    known = {tool for tools in TOOLS_BY_SERVICE.values() for tool in tools}
    strangers = [rule for rule in request.waived_rules if ":" in rule and rule.split(":", 1)[0] not in known]
    if strangers:
        return "waived_rules", f"no such tool in {', '.join(strangers)}; tools: {', '.join(sorted(known))}"
    for analysis_type in request.analysis_types:
        unknown = unknown_tools(analysis_type, list(request.tools))
        if unknown:
            offered = ", ".join(offered_tools(analysis_type))
            return (
                "tools",
                f"unknown for analysis type {analysis_type!r}: {', '.join(unknown)}; allowed: {offered}",
            )
    return None


def select_apps(request: BatchRequest, folders: list[AppFolder]) -> Selection:
    """The apps the batch covers; models named without any app folder are refused by the caller."""
    by_model: dict[str, list[int]] = {}
    for folder in folders:
        by_model.setdefault(folder.model_slug, []).append(folder.app_number)
    models = list(dict.fromkeys(request.models)) or sorted(by_model)
    chosen, missing = [], []
    for model in models:
        present = by_model.get(model, [])
        wanted = list(dict.fromkeys(request.apps)) or present
        chosen += [(model, number) for number in wanted if number in present]
        missing += [f"{model}/app{number}" for number in wanted if number not in present]
    return Selection(apps=chosen, missing=missing)


def unknown_models(request: BatchRequest, folders: list[AppFolder]) -> list[str]:
    known = {folder.model_slug for folder in folders}
    return [model for model in dict.fromkeys(request.models) if model not in known]


async def batch_progress(sessions: Sessions, record: BatchRecord) -> BatchProgress:
    """Where each task of the batch stands; a task the database does not know yet is `pending`."""
    ids = [task.task_id for task in record.tasks]
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Task.task_id, Task.status, Task.findings_count).where(Task.task_id.in_(ids))
            )
        ).all()
    known = {task_id: (status, count) for task_id, status, count in rows}
    views = [
        BatchTaskView(
            task_id=task.task_id,
            model_slug=task.model_slug,
            app_number=task.app_number,
            analysis_type=task.analysis_type,
            status=known.get(task.task_id, ("pending", 0))[0],
            findings_count=known.get(task.task_id, ("pending", 0))[1],
        )
        for task in record.tasks
    ]
    by_status = Counter(view.status for view in views)
    by_model: dict[str, dict[str, int]] = {}
    for view in views:
        counts = by_model.setdefault(view.model_slug, dict.fromkeys(STATUSES, 0))
        counts[view.status] = counts.get(view.status, 0) + 1
    done = sum(by_status[status] for status in TERMINAL_STATUSES)
    return BatchProgress(
        batch_id=record.batch_id,
        created_at=record.created_at,
        total=len(views),
        done=done,
        percent=round(100.0 * done / len(views), 1) if views else 100.0,
        finished=done == len(views),
        by_status={status: by_status.get(status, 0) for status in STATUSES},
        by_model=dict(sorted(by_model.items())),
        tasks=views,
        waived_rules=record.waived_rules,
    )


async def recorded_batch(sessions: Sessions, batch_id: str) -> BatchRecord | None:
    """The batch rebuilt from task rows (once its bucket record has expired), or None when no task names it."""
    async with sessions() as session:
        rows = (
            await session.scalars(select(Task).where(Task.batch_id == batch_id).order_by(Task.created_at))
        ).all()
    if not rows:
        return None
    tasks = [msgspec.convert(row, BatchTask, from_attributes=True) for row in rows]
    waived = rows[0].waived_rules or []
    return BatchRecord(batch_id=batch_id, created_at=rows[0].created_at, tasks=tasks, waived_rules=waived)
