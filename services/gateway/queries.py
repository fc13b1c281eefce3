"""Reads of the database the persister writes: tasks, their service and tool runs, their findings.

Plain async functions over a session factory; they answer with the HTTP schemas and know nothing of Litestar.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Select, case, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.gateway.load_views import load_views
from services.gateway.schemas import (
    FindingPage,
    FindingView,
    Progress,
    ServiceView,
    TaskDetail,
    TaskPage,
    TaskSummary,
    ToolView,
)
from shared.results.findings import SEVERITIES
from shared.results.issue_groups import issue_severity_breakdown
from shared.results.verdicts import Verdicts
from shared.store.models import FindingRow, ServiceRun, Task, ToolRunRow

Sessions = async_sessionmaker[AsyncSession]

# A finding's issue group (shared/results/issue_groups); rows written before groups existed hold their fingerprint.
ISSUE_KEY = FindingRow.issue_group
View = TypeVar("View", bound=msgspec.Struct)


def views(rows: Sequence[object], view: type[View]) -> list[View]:
    """Rows as HTTP views: each view field is read from the row attribute of the same name."""
    return [msgspec.convert(row, view, from_attributes=True) for row in rows]


async def database_answers(engine: AsyncEngine) -> None:
    """Raise unless the database answers `SELECT 1`."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def task_status(sessions: Sessions, task_id: str) -> str | None:
    """The task's status, or None when the database has no row for it."""
    async with sessions() as session:
        return await session.scalar(select(Task.status).where(Task.task_id == task_id))


async def task_detail(sessions: Sessions, task_id: str) -> TaskDetail | None:
    """Everything about one task, or None when the database has no row for it (yet)."""
    async with sessions() as session:
        task = await session.get(Task, task_id)
        if task is None:
            return None
        services = (
            await session.scalars(
                select(ServiceRun).where(ServiceRun.task_id == task_id).order_by(ServiceRun.service)
            )
        ).all()
        tools = (
            await session.scalars(
                select(ToolRunRow)
                .where(ToolRunRow.task_id == task_id)
                .order_by(ToolRunRow.service, ToolRunRow.tool)
            )
        ).all()
        counts = (
            await session.execute(
                select(FindingRow.tool, FindingRow.severity, func.count())
                .where(FindingRow.task_id == task_id)
                .group_by(FindingRow.tool, FindingRow.severity)
            )
        ).all()
        members = (
            await session.execute(
                select(ISSUE_KEY, FindingRow.severity, FindingRow.origin).where(FindingRow.task_id == task_id)
            )
        ).all()
        issues = issue_severity_breakdown(
            [(key, severity) for key, severity, origin in members if origin == "app"]
        )
        left_out = Counter(origin for _key, _severity, origin in members if origin != "app")
    by_severity: dict[str, int] = {level: 0 for level in SEVERITIES}
    by_tool: dict[str, int] = {}
    for tool, severity, count in counts:
        by_severity[severity] = by_severity.get(severity, 0) + count
        by_tool[tool] = by_tool.get(tool, 0) + count
    return TaskDetail(
        task_id=task.task_id,
        model_slug=task.model_slug,
        app_number=task.app_number,
        analysis_type=task.analysis_type,
        status=task.status,
        status_reason=task.status_reason,
        priority=task.priority,
        requested_tools=list(task.tools or []),
        progress=Progress(percent=task.progress_percent, message=task.progress_message),
        created_at=task.created_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
        # Counted from the finding rows, so the numbers always match what /findings lists.
        findings_count=sum(by_tool.values()),
        severity_breakdown=by_severity,
        findings_by_tool=dict(sorted(by_tool.items())),
        issues_count=sum(issues.values()),
        issue_severity_breakdown=issues,
        findings_left_out=dict(sorted(left_out.items())),
        services=views(services, ServiceView),
        load=load_views([(run.service, dict(run.metrics or {})) for run in services]),
        tools=views(tools, ToolView),
        result_dir=task.result_dir,
        trace_id=task.trace_id,
        worker=task.worker,
        integrity_note=task.integrity_note,
        batch_id=task.batch_id,
        verdicts=msgspec.convert(task.verdicts, Verdicts) if task.verdicts else None,
        waived_rules=list(task.waived_rules or []),
    )


async def list_tasks(sessions: Sessions, filters: dict[str, Any], limit: int, offset: int) -> TaskPage:
    """Tasks matching `filters` (column → value; None values ignored), newest first."""
    conditions = [getattr(Task, column) == value for column, value in filters.items() if value is not None]
    query: Select[Any] = select(Task).where(*conditions)
    async with sessions() as session:
        total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = (
            await session.scalars(
                query.order_by(Task.created_at.desc(), Task.task_id).limit(limit).offset(offset)
            )
        ).all()
    counts = await findings_counts(sessions, [row.task_id for row in rows])
    return TaskPage(
        tasks=[
            msgspec.structs.replace(view, findings_count=counts.get(view.task_id, 0))
            for view in views(rows, TaskSummary)
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


async def findings_counts(sessions: Sessions, task_ids: list[str]) -> dict[str, int]:
    """Findings per task, counted from the rows (a running task's row count is not final until it ends)."""
    if not task_ids:
        return {}
    async with sessions() as session:
        rows = await session.execute(
            select(FindingRow.task_id, func.count())
            .where(FindingRow.task_id.in_(task_ids))
            .group_by(FindingRow.task_id)
        )
        return {task_id: count for task_id, count in rows.all()}


async def task_findings(
    sessions: Sessions, task_id: str, filters: dict[str, Any], limit: int, offset: int
) -> FindingPage:
    """One page of a task's findings, most severe first, optionally narrowed to a tool and/or severity."""
    conditions = [FindingRow.task_id == task_id]
    conditions += [
        getattr(FindingRow, column) == value for column, value in filters.items() if value is not None
    ]
    rank = {level: index for index, level in enumerate(SEVERITIES)}
    order = case(rank, value=FindingRow.severity, else_=len(SEVERITIES))  # critical first, on any SQL backend
    async with sessions() as session:
        total = await session.scalar(select(func.count()).select_from(FindingRow).where(*conditions)) or 0
        rows = (
            await session.scalars(
                select(FindingRow)
                .where(*conditions)
                .order_by(order, FindingRow.tool, FindingRow.path, FindingRow.line, FindingRow.id)
                .limit(limit)
                .offset(offset)
            )
        ).all()
    return FindingPage(
        task_id=task_id,
        findings=views(rows, FindingView),
        total=total,
        limit=limit,
        offset=offset,
    )
