"""The SQL side, writing: what each message changes in the tables, as one unit of work (committed with the units
of other messages handled meanwhile, services/persister/sessions.py).

Plain async functions over a session factory, each handing its unit (a plain function of a synchronous session)
to `transaction`. The usual case of each message is a few Core statements (an INSERT that skips an existing key,
an UPDATE of a live row); when one matches no row the unit reads the row (ORM) and decides, so the same code runs
on SQLite and PostgreSQL whatever order messages arrive in. A task never moves
backwards: once terminal, no later event changes its status. Reads live in `lookups`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import (
    Connection,
    Float,
    Table,
    Text,
    Update,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    or_,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from services.persister.lookups import TaskSnapshot, as_utc, has_finished, snapshot_of
from services.persister.sessions import Sessions, transaction
from shared.catalog import plan
from shared.database import insert_new
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

# Plain tables for the statements of the hot path: Core, without the ORM's bookkeeping.
TASKS: Table = Task.__table__  # type: ignore[assignment]
PROCESSED_EVENTS: Table = ProcessedEvent.__table__  # type: ignore[assignment]
TOOL_RUNS: Table = ToolRunRow.__table__  # type: ignore[assignment]
SERVICE_RUNS: Table = ServiceRun.__table__  # type: ignore[assignment]
FINDINGS: Table = FindingRow.__table__  # type: ignore[assignment]


def _core(session: Session) -> Connection:
    """The session's connection, for Core statements: no ORM bookkeeping (the units flush their ORM changes
    themselves, and keep no object from one statement to the next)."""
    return session.connection()


def _mark_processed(session: Session, event_id: str, task_id: str, kind: str) -> None:
    row = {"event_id": event_id, "task_id": task_id, "kind": kind, "processed_at": utcnow()}
    _core(session).execute(insert_new(session, PROCESSED_EVENTS), row)


def _new_task(source: TaskEvent | AnalysisRequest) -> dict[str, Any]:
    """The columns of a task row first created from `source`, as `pending`."""
    ref = source.task
    now = utcnow()
    return {
        "task_id": ref.id,
        "model_slug": ref.model_slug,
        "app_number": ref.app_number,
        "analysis_type": ref.analysis_type,
        "priority": "normal",
        "tools": [],
        "services": [],
        "status": "pending",
        "progress_percent": 0.0,
        "findings_count": 0,
        "severity_breakdown": {},
        "created_at": as_utc(source.occurred_at) or now,
        "updated_at": now,
    }


def _param(name: str, column: str) -> BindParameter[Any]:
    """A bound parameter typed as the tasks column `column` (JSON and datetimes are converted as the column's)."""
    return bindparam(name, type_=TASKS.c[column].type)


# The hot path's UPDATEs are built once with bound parameters (prefixed `p_`: a parameter may not be named like a
# column it sets): executing one costs no statement construction and no cache-key computation.
_OCCURRED = _param("p_occurred_at", "created_at")
# Not terminal: the statuses as one bound parameter each. `not_in(TERMINAL_STATUSES)` would bind the list as one
# "expanding" parameter, which SQLAlchemy re-renders into the SQL on every execution (about a tenth of the CPU of
# the persister's statements); these are rendered once, with the statement.
_LIVE_STATUS = TASKS.c.status.not_in(
    [bindparam(None, status, type_=TASKS.c.status.type) for status in sorted(TERMINAL_STATUSES)]
)


def _live_update(**values: Any) -> Update:
    """An UPDATE of the task's row unless it is terminal, its `created_at` kept at the earliest time a message of
    the task carried (as `_task_row` does). Parameters: `p_task_id`, `p_occurred_at` and those of `values`."""
    live = TASKS.c.task_id == bindparam("p_task_id"), _LIVE_STATUS
    earliest = case((TASKS.c.created_at > _OCCURRED, _OCCURRED), else_=TASKS.c.created_at)
    return update(TASKS).where(*live).values(created_at=earliest, **values)


# The request's choice of tools, else the plan's (a JSON list compares as its text on SQLite and PostgreSQL).
_NO_TOOLS = or_(cast(TASKS.c.tools, Text).is_(None), cast(TASKS.c.tools, Text) == "[]")
_KEPT_TRACE_ID = func.coalesce(TASKS.c.trace_id, _param("p_trace_id", "trace_id"))
_STARTED = _live_update(
    status="running",
    started_at=func.coalesce(TASKS.c.started_at, _param("p_started_at", "started_at")),
    services=_param("p_services", "services"),
    tools=case((_NO_TOOLS, _param("p_tools", "tools")), else_=TASKS.c.tools),
    priority=bindparam("p_priority"),
    worker=func.coalesce(_param("p_worker", "worker"), TASKS.c.worker),
    trace_id=_KEPT_TRACE_ID,
    updated_at=_param("p_updated_at", "updated_at"),
)
_PROGRESS = _live_update(
    status="running",
    progress_percent=bindparam("p_percent"),
    progress_message=bindparam("p_message"),
    updated_at=_param("p_updated_at", "updated_at"),
)
_SERVICE = _live_update(
    status="running", trace_id=_KEPT_TRACE_ID, updated_at=_param("p_updated_at", "updated_at")
)
# The outcome: one UPDATE whose condition is the check, so a row finished by another writer is not matched.
_OUTCOME = (
    update(TASKS)
    .where(TASKS.c.task_id == bindparam("p_task_id"), _LIVE_STATUS)
    .values(
        status=bindparam("p_status"),
        status_reason=bindparam("p_reason"),
        finished_at=_param("p_finished_at", "finished_at"),
        findings_count=bindparam("p_findings_count"),
        severity_breakdown=_param("p_severity_breakdown", "severity_breakdown"),
        result_dir=bindparam("p_result_dir"),
        verdicts=_param("p_verdicts", "verdicts"),
        progress_percent=func.coalesce(
            bindparam("p_progress_percent", type_=Float()), TASKS.c.progress_percent
        ),
        updated_at=_param("p_updated_at", "updated_at"),
    )
)
_INSERT = {table.name: insert(table) for table in (SERVICE_RUNS, TOOL_RUNS, FINDINGS)}
# An ended task's outcomes live in its folder: the staged copies go with the outcome's transaction.
_UNSTAGE = (
    update(SERVICE_RUNS).where(SERVICE_RUNS.c.task_id == bindparam("p_task_id")).values(staged_result=None)
)


def _update_live(session: Session, statement: Update, source: TaskEvent, values: dict[str, Any]) -> bool:
    """`statement` (a `_live_update`) for `source`'s task with `values`; False when no row matched (missing or
    terminal), for the caller to take the general path (`_task_row`)."""
    params = {"p_task_id": source.task.id, "p_occurred_at": as_utc(source.occurred_at) or utcnow(), **values}
    return bool(_core(session).execute(statement, params).rowcount)


def _task_row(session: Session, source: TaskEvent | AnalysisRequest) -> Task:
    """The task's row, created (as `pending`) from what the message carries when there is none yet."""
    task = session.get(Task, source.task.id)
    occurred_at = as_utc(source.occurred_at) or utcnow()
    if task is None:
        task = Task(**_new_task(source))
        session.add(task)
        session.flush()
        return task
    if task.status not in TERMINAL_STATUSES:
        # Whichever message arrives first creates the row; the earliest time seen is the task's creation.
        created = as_utc(task.created_at)
        if created is None or occurred_at < created:
            task.created_at = occurred_at
    return task


async def record_request(sessions: Sessions, request: AnalysisRequest, trace_id: str | None) -> None:
    """The gateway accepted a task: record it as `pending` (or fill in what an earlier event did not know)."""

    services = list(plan(request.task.analysis_type, list(request.tools)))

    def work(session: Session) -> None:
        # Usually the first message of its task: then one INSERT says it all.
        first = {**_new_task(request), "priority": request.priority, "tools": list(request.tools)}
        first |= {"services": services, "trace_id": trace_id}
        first |= {"batch_id": request.batch_id, "source_lines": request.source_lines}
        first |= {"waived_rules": list(request.waived_rules) or None}
        if _core(session).execute(insert_new(session, TASKS), first).rowcount:
            return
        task = _task_row(session, request)
        # Kept even for a task that ended before its request arrived: batches and reports need them.
        task.batch_id = task.batch_id or request.batch_id
        task.source_lines = task.source_lines if task.source_lines is not None else request.source_lines
        task.waived_rules = task.waived_rules or list(request.waived_rules) or None
        if task.status in TERMINAL_STATUSES:
            return
        task.priority = request.priority
        # The tools asked for; when the request named none, whatever `started` said will run stays.
        if request.tools or not task.tools:
            task.tools = list(request.tools)
        if not task.services:
            task.services = services
        task.trace_id = task.trace_id or trace_id

    await transaction(sessions, work)


async def record_started(sessions: Sessions, event: TaskStarted, trace_id: str | None) -> None:
    """An orchestrator took the task: `running`, with the services and tools it runs."""

    values = {
        "p_started_at": as_utc(event.occurred_at),
        "p_services": list(event.services),
        "p_tools": list(event.tools),
        "p_priority": event.priority,
        "p_worker": event.worker or None,
        "p_trace_id": trace_id,
        "p_updated_at": utcnow(),
    }

    def work(session: Session) -> None:
        if _update_live(session, _STARTED, event, values):
            _mark_processed(session, event.event_id, event.task.id, "started")
            return
        task = _task_row(session, event)
        if task.status not in TERMINAL_STATUSES:
            task.status = "running"
            task.started_at = task.started_at or as_utc(event.occurred_at)
            task.services = list(event.services)
            task.tools = list(task.tools or []) or list(event.tools)  # the request's choice, else the plan
            task.priority = event.priority
            task.worker = event.worker or task.worker
            task.trace_id = task.trace_id or trace_id
            task.updated_at = utcnow()
        _mark_processed(session, event.event_id, event.task.id, "started")

    await transaction(sessions, work)


async def record_progress(sessions: Sessions, event: TaskProgress) -> None:
    """Progress of a running task; a terminal task is left alone.

    Progress events are not recorded in processed_events: applying one twice changes nothing, and a task sends
    many of them.
    """

    message = event.message or f"{event.service}: {event.tool or ''} {event.stage}".strip()
    now = utcnow()

    def work(session: Session) -> None:
        if _update_live(
            session, _PROGRESS, event, {"p_percent": event.percent, "p_message": message, "p_updated_at": now}
        ):
            return
        task = _task_row(session, event)
        if task.status in TERMINAL_STATUSES:
            return
        task.status = "running"
        task.progress_percent = event.percent
        task.progress_message = message
        task.updated_at = now

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
            "reused_from": run.reused_from,
            "files_reused": run.files_reused,
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
            "origin": finding.origin,
            "proof": msgspec.to_builtins(finding.proof) if finding.proof else None,
        }
        for finding, issue_group in zip(result.findings, keys, strict=True)
    ]


async def record_service(
    sessions: Sessions,
    event: ServiceFinished,
    result: ServiceResult | None,
    trace_id: str | None,
    *,
    unless_finished: bool = False,
    staged: bytes | None = None,
) -> bool:
    """Record this outcome of the (task, service), replacing an earlier one, so a redelivery never doubles.

    `staged` is the whole outcome for the task's folder (services/persister/staging.py), kept in the service run
    until the task ends. With `unless_finished`, False and nothing written when the task has finished already (its
    folder is final).
    """

    keys = group_keys(result.findings) if result is not None else []
    live = {"p_trace_id": trace_id, "p_updated_at": utcnow()}
    run = {
        "task_id": event.task.id,
        "service": event.service,
        "status": event.status,
        "error": event.error or (result.error if result else None),
        "findings_count": len(result.findings) if result else 0,
        "metrics": dict(result.metrics) if result else {},
        "finding_summary": summarize(result.findings, keys) if result else None,
        "event_id": event.event_id,
        "recorded_at": utcnow(),
        "staged_result": staged,
    }

    def work(session: Session) -> bool:
        if not _update_live(session, _SERVICE, event, live):
            task = _task_row(session, event)
            if unless_finished and has_finished(task.status):
                return False
            if task.status == "pending":
                task.status = "running"
            if task.status not in TERMINAL_STATUSES:
                task.trace_id = task.trace_id or trace_id
                task.updated_at = utcnow()
            session.flush()
        core = _core(session)
        if not core.execute(insert_new(session, SERVICE_RUNS), run).rowcount:
            # A redelivery: the rows of its first delivery (written together with its service run) are replaced.
            for table in (FINDINGS, TOOL_RUNS, SERVICE_RUNS):
                core.execute(
                    delete(table).where(table.c.task_id == event.task.id, table.c.service == event.service)
                )
            core.execute(_INSERT[SERVICE_RUNS.name], run)
        if result is not None:
            tools = _tool_rows(event.task.id, event.service, result)
            findings = _finding_rows(event.task.id, event.service, result, keys)
            if tools:
                core.execute(_INSERT[TOOL_RUNS.name], tools)
            if findings:
                core.execute(_INSERT[FINDINGS.name], findings)  # one executemany, however many there are
        _mark_processed(session, event.event_id, event.task.id, "service")
        return True

    return await transaction(sessions, work)


async def ensure_task(sessions: Sessions, event: TaskEvent) -> TaskSnapshot:
    """The task's record, creating its row from the event when no earlier message did."""

    def work(session: Session) -> TaskSnapshot:
        return snapshot_of(_task_row(session, event))

    return await transaction(sessions, work)


@dataclass(frozen=True)
class Outcome:
    """How a task ended, as its row records it."""

    status: str
    reason: str | None
    finished_at: datetime
    findings_count: int
    severity_breakdown: dict[str, int]
    result_dir: str | None  # None: the disk refused the folder (the task is failed with that reason)
    verdicts: dict[str, Any] | None = None  # shared.verdicts.Verdicts, as stored


async def record_outcome(
    sessions: Sessions, task_id: str, outcome: Outcome, event_id: str | None, kind: str
) -> bool:
    """Mark the task terminal and name its folder, and drop its staged outcomes; False when another writer
    finished it first."""

    values: dict[str, Any] = {
        "p_task_id": task_id,
        "p_status": outcome.status,
        "p_reason": outcome.reason,
        "p_finished_at": outcome.finished_at,
        "p_findings_count": outcome.findings_count,
        "p_severity_breakdown": dict(outcome.severity_breakdown),
        "p_result_dir": outcome.result_dir,
        "p_verdicts": outcome.verdicts,
        "p_progress_percent": 100.0 if outcome.status == "completed" else None,  # else left as it was
        "p_updated_at": utcnow(),
    }

    def work(session: Session) -> bool:
        core = _core(session)
        if core.execute(_OUTCOME, values).rowcount == 0:
            return False
        core.execute(_UNSTAGE, {"p_task_id": task_id})
        if event_id is not None:
            _mark_processed(session, event_id, task_id, kind)
        return True

    return await transaction(sessions, work)
