"""The SQL side, writing: what each message changes in the tables, as one unit of work (committed with the units
of other messages handled meanwhile, services/persister/sessions.py).

Plain async functions over a session factory; dialect-neutral SQLAlchemy (select, then insert or update, inside
one transaction), so the same code runs on SQLite and PostgreSQL. A task never moves backwards: once terminal,
no later event changes its status. Reads live in `lookups`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.persister.lookups import Sessions, TaskSnapshot, as_utc, snapshot_of
from services.persister.sessions import GroupCommit, one_transaction
from shared.catalog import plan
from shared.finding_summary import summarize
from shared.issue_groups import group_keys
from shared.messages import (
    TERMINAL_STATUSES,
    AnalysisRequest,
    ServiceFinished,
    TaskEvent,
    TaskProgress,
    TaskStarted,
    utcnow,
)
from shared.models import FindingRow, ProcessedEvent, ServiceRun, Task, ToolRunRow
from shared.protocol import ServiceResult

log = logging.getLogger(__name__)

T = TypeVar("T")


async def transaction(sessions: Sessions, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction: the persister's group commit when `sessions` is one, else on its own."""
    if isinstance(sessions, GroupCommit):
        return await sessions.write(work)
    return await one_transaction(sessions, work)


async def _mark_processed(session: AsyncSession, event_id: str, task_id: str, kind: str) -> None:
    if await session.get(ProcessedEvent, event_id) is None:
        session.add(ProcessedEvent(event_id=event_id, task_id=task_id, kind=kind, processed_at=utcnow()))


async def _task_row(session: AsyncSession, source: TaskEvent | AnalysisRequest) -> Task:
    """The task's row, created (as `pending`) from what the message carries when there is none yet."""
    ref = source.task
    task = await session.get(Task, ref.id)
    now = utcnow()
    occurred_at = as_utc(source.occurred_at) or now
    if task is None:
        task = Task(
            task_id=ref.id,
            model_slug=ref.model_slug,
            app_number=ref.app_number,
            analysis_type=ref.analysis_type,
            priority="normal",
            tools=[],
            services=[],
            status="pending",
            progress_percent=0.0,
            findings_count=0,
            severity_breakdown={},
            created_at=occurred_at,
            updated_at=now,
        )
        session.add(task)
        await session.flush()
        return task
    if task.status not in TERMINAL_STATUSES:
        # Whichever message arrives first creates the row; the earliest time seen is the task's creation.
        created = as_utc(task.created_at)
        if created is None or occurred_at < created:
            task.created_at = occurred_at
    return task


async def record_request(sessions: Sessions, request: AnalysisRequest, trace_id: str | None) -> None:
    """The gateway accepted a task: record it as `pending` (or fill in what an earlier event did not know)."""

    async def work(session: AsyncSession) -> None:
        task = await _task_row(session, request)
        # Kept even for a task that ended before its request arrived: batches and reports need them.
        task.batch_id = task.batch_id or request.batch_id
        task.source_lines = task.source_lines if task.source_lines is not None else request.source_lines
        if task.status in TERMINAL_STATUSES:
            return
        task.priority = request.priority
        # The tools asked for; when the request named none, whatever `started` said will run stays.
        if request.tools or not task.tools:
            task.tools = list(request.tools)
        if not task.services:
            task.services = list(plan(request.task.analysis_type, list(request.tools)))
        task.trace_id = task.trace_id or trace_id

    await transaction(sessions, work)


async def record_started(sessions: Sessions, event: TaskStarted, trace_id: str | None) -> None:
    """An orchestrator took the task: `running`, with the services and tools it runs."""

    async def work(session: AsyncSession) -> None:
        task = await _task_row(session, event)
        if task.status not in TERMINAL_STATUSES:
            task.status = "running"
            task.started_at = task.started_at or as_utc(event.occurred_at)
            task.services = list(event.services)
            task.tools = list(task.tools or []) or list(event.tools)  # the request's choice, else the plan
            task.priority = event.priority
            task.worker = event.worker or task.worker
            task.trace_id = task.trace_id or trace_id
            task.updated_at = utcnow()
        await _mark_processed(session, event.event_id, event.task.id, "started")

    await transaction(sessions, work)


async def record_progress(sessions: Sessions, event: TaskProgress) -> None:
    """Progress of a running task; a terminal task is left alone.

    Progress events are not recorded in processed_events: applying one twice changes nothing, and a task sends
    many of them.
    """

    async def work(session: AsyncSession) -> None:
        task = await _task_row(session, event)
        if task.status in TERMINAL_STATUSES:
            return
        task.status = "running"
        task.progress_percent = event.percent
        task.progress_message = event.message or f"{event.service}: {event.tool or ''} {event.stage}".strip()
        task.updated_at = utcnow()

    await transaction(sessions, work)


def _tool_rows(task_id: str, service: str, result: ServiceResult) -> list[dict[str, Any]]:
    by_tool = {run.tool: run for run in result.tools}  # a tool named twice keeps its last record
    return [
        {
            "task_id": task_id,
            "service": service,
            "tool": run.tool[:64],
            "status": run.status,
            "version": run.version[:128] if run.version else None,
            "command": list(run.command),
            "exit_code": run.exit_code,
            "duration_s": run.duration_s,
            "files_analyzed": run.files_analyzed,
            "findings_count": run.findings_count,
            "reason": run.reason,
        }
        for run in by_tool.values()
    ]


def _finding_rows(task_id: str, service: str, result: ServiceResult, keys: list[str]) -> list[dict[str, Any]]:
    # Columns with a length are cut to it: PostgreSQL refuses a longer value, and one odd rule id must not cost
    # the task all its findings.
    return [
        {
            "task_id": task_id,
            "service": service,
            "tool": finding.tool[:64],
            "rule_id": finding.rule_id[:256],
            "severity": finding.severity,
            "category": finding.category[:32],
            "message": finding.message,
            "path": finding.path,
            "line": finding.line,
            "column": finding.column,
            "end_line": finding.end_line,
            "cwe": finding.cwe[:32] if finding.cwe else None,
            "help_url": finding.help_url,
            "fingerprint": finding.fingerprint[:64],
            "extra": dict(finding.extra),
            "issue_group": issue_group,
        }
        for finding, issue_group in zip(result.findings, keys, strict=True)
    ]


async def record_service(
    sessions: Sessions, event: ServiceFinished, result: ServiceResult | None, trace_id: str | None
) -> None:
    """Replace the (task, service) rows with this outcome: delete, then insert, so a redelivery never doubles."""

    async def work(session: AsyncSession) -> None:
        task = await _task_row(session, event)
        if task.status == "pending":
            task.status = "running"
        if task.status not in TERMINAL_STATUSES:
            task.trace_id = task.trace_id or trace_id
            task.updated_at = utcnow()
        scope = {"task_id": event.task.id, "service": event.service}
        keys = group_keys(result.findings) if result is not None else []
        for model in (FindingRow, ToolRunRow, ServiceRun):
            await session.execute(delete(model).filter_by(**scope))
        session.add(
            ServiceRun(
                **scope,
                status=event.status,
                error=event.error or (result.error if result else None),
                findings_count=len(result.findings) if result else 0,
                metrics=dict(result.metrics) if result else {},
                finding_summary=summarize(result.findings, keys) if result else None,
                event_id=event.event_id,
                recorded_at=utcnow(),
            )
        )
        if result is not None:
            tools = _tool_rows(event.task.id, event.service, result)
            findings = _finding_rows(event.task.id, event.service, result, keys)
            if tools:
                await session.execute(insert(ToolRunRow), tools)
            if findings:
                await session.execute(insert(FindingRow), findings)  # one executemany, however many there are
        await _mark_processed(session, event.event_id, event.task.id, "service")

    await transaction(sessions, work)


async def ensure_task(sessions: Sessions, event: TaskEvent) -> TaskSnapshot:
    """The task's record, creating its row from the event when no earlier message did."""

    async def work(session: AsyncSession) -> TaskSnapshot:
        return snapshot_of(await _task_row(session, event))

    return await transaction(sessions, work)


@dataclass(frozen=True)
class Outcome:
    """How a task ended, as its row records it."""

    status: str
    reason: str | None
    finished_at: datetime
    findings_count: int
    severity_breakdown: dict[str, int]
    result_dir: str


async def record_outcome(
    sessions: Sessions, task_id: str, outcome: Outcome, event_id: str | None, kind: str
) -> bool:
    """Mark the task terminal and name its folder; False when another writer finished it first."""

    async def work(session: AsyncSession) -> bool:
        task = await session.get(Task, task_id)
        if task is None or task.result_dir is not None:
            return False
        task.status = outcome.status
        task.status_reason = outcome.reason
        task.finished_at = outcome.finished_at
        task.findings_count = outcome.findings_count
        task.severity_breakdown = dict(outcome.severity_breakdown)
        task.result_dir = outcome.result_dir
        task.updated_at = utcnow()
        if outcome.status == "completed":
            task.progress_percent = 100.0
        if event_id is not None:
            await _mark_processed(session, event_id, task_id, kind)
        return True

    return await transaction(sessions, work)
