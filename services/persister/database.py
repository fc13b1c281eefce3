"""The SQL side, writing: what each message changes in the tables, as one unit of work (committed with the units
of other messages handled meanwhile, services/persister/sessions.py).

Plain async functions over a session factory, each handing its unit (a plain function of a synchronous session)
to `transaction`. Each change of a task is one Core statement, written once: an UPDATE of its row unless the task is
terminal. A message may come before the one that creates its task's row (the request and the events are read by
different durables): when the UPDATE matches no row, the task's row is inserted as `pending` from what the message
carries (an INSERT that skips an existing key) and the same UPDATE runs again; so the same statements run on SQLite
and PostgreSQL whatever order messages arrive in. A task never moves backwards: once terminal, no later event
changes its status. Reads live in `lookups`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import (
    Boolean,
    ColumnElement,
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

from services.persister.sessions import Sessions, transaction
from shared.results.finding_summary import summarize
from shared.results.issue_groups import group_keys
from shared.store.database import insert_new
from shared.store.models import FindingRow, ProcessedEvent, ServiceRun, Task, ToolRunRow
from shared.wire.catalog import plan
from shared.wire.messages import (
    TERMINAL_STATUSES,
    AnalysisRequest,
    ServiceFinished,
    TaskEvent,
    TaskProgress,
    TaskStarted,
    as_utc,
    utcnow,
)
from shared.wire.protocol import ServiceResult

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
        "created_at": as_utc(source.occurred_at),
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
    the task carried (whichever message comes first creates the row). Parameters: `p_task_id`, `p_occurred_at`
    and those of `values`."""
    live = TASKS.c.task_id == bindparam("p_task_id"), _LIVE_STATUS
    earliest = case((TASKS.c.created_at > _OCCURRED, _OCCURRED), else_=TASKS.c.created_at)
    return update(TASKS).where(*live).values(created_at=earliest, **values)


def _empty(column: str) -> ColumnElement[bool]:
    """A JSON list column that holds nothing (a JSON list compares as its text on SQLite and PostgreSQL)."""
    text = cast(TASKS.c[column], Text)
    return or_(text.is_(None), text == "[]", text == "null")


def _unless_set(column: str, param: str) -> ColumnElement[Any]:
    """The column's list, or the parameter's when the column holds none."""
    return case((_empty(column), _param(param, column)), else_=TASKS.c[column])


_KEPT_TRACE_ID = func.coalesce(TASKS.c.trace_id, _param("p_trace_id", "trace_id"))
# A request that comes after an event of its task: what it alone knows, kept even once the task has ended (batches
# and reports need them) ...
_REQUEST_FACTS = (
    update(TASKS)
    .where(TASKS.c.task_id == bindparam("p_task_id"))
    .values(
        batch_id=func.coalesce(TASKS.c.batch_id, bindparam("p_batch_id")),
        source_lines=func.coalesce(TASKS.c.source_lines, bindparam("p_source_lines")),
        waived_rules=_unless_set("waived_rules", "p_waived_rules"),
    )
)
# ... and, while the task is live, its priority and the tools asked for (when it named none, whatever `started` said
# will run stays).
_REQUEST = _live_update(
    priority=bindparam("p_priority"),
    tools=case(
        (or_(bindparam("p_names_tools", type_=Boolean()), _empty("tools")), _param("p_tools", "tools")),
        else_=TASKS.c.tools,
    ),
    services=_unless_set("services", "p_services"),
    trace_id=_KEPT_TRACE_ID,
)

_STARTED = _live_update(
    status="running",
    started_at=func.coalesce(TASKS.c.started_at, _OCCURRED),  # when it started: when `started` says it did
    services=_param("p_services", "services"),
    tools=_unless_set("tools", "p_tools"),  # the request's choice, else the plan
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
# The end: one UPDATE whose condition is the check, so a row finished by another writer is not matched.
_END = (
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
# An ended task's outcomes live in its folder: the staged copies go with the transaction of its end.
_UNSTAGE = (
    update(SERVICE_RUNS).where(SERVICE_RUNS.c.task_id == bindparam("p_task_id")).values(staged_result=None)
)


def _apply(
    session: Session, statement: Update, source: TaskEvent | AnalysisRequest, values: dict[str, Any]
) -> bool:
    """`statement` (a `_live_update`) for `source`'s task with `values`, its row first inserted as `pending` when
    there is none yet; False when the task is terminal (nothing changed)."""
    row = _new_task(source)
    params = {"p_task_id": source.task.id, "p_occurred_at": row["created_at"], **values}
    core = _core(session)
    if core.execute(statement, params).rowcount:
        return True
    core.execute(insert_new(session, TASKS), row)
    return bool(core.execute(statement, params).rowcount)


async def record_request(sessions: Sessions, request: AnalysisRequest, trace_id: str | None) -> None:
    """The gateway accepted a task: record it as `pending` (or fill in what an earlier event did not know)."""

    services = list(plan(request.task.analysis_type, list(request.tools)))

    def work(session: Session) -> None:
        # Usually the first message of its task: then one INSERT says it all.
        first = {**_new_task(request), "priority": request.priority, "tools": list(request.tools)}
        first |= {"services": services, "trace_id": trace_id}
        first |= {"batch_id": request.batch_id, "source_lines": request.source_lines}
        first |= {"waived_rules": list(request.waived_rules) or None}
        core = _core(session)
        if core.execute(insert_new(session, TASKS), first).rowcount:
            return
        facts = {"p_batch_id": request.batch_id, "p_source_lines": request.source_lines}
        facts |= {"p_task_id": request.task.id, "p_waived_rules": first["waived_rules"]}
        core.execute(_REQUEST_FACTS, facts)
        live = {
            "p_priority": request.priority,
            "p_names_tools": bool(request.tools),
            "p_tools": first["tools"],
        }
        live |= {"p_services": services, "p_trace_id": trace_id}
        _apply(session, _REQUEST, request, live)

    await transaction(sessions, work)


async def record_started(sessions: Sessions, event: TaskStarted, trace_id: str | None) -> None:
    """An orchestrator took the task: `running`, with the services and tools it runs."""

    values = {
        "p_services": list(event.services),
        "p_tools": list(event.tools),
        "p_priority": event.priority,
        "p_worker": event.worker or None,
        "p_trace_id": trace_id,
        "p_updated_at": utcnow(),
    }

    def work(session: Session) -> None:
        _apply(session, _STARTED, event, values)
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
        values = {"p_percent": event.percent, "p_message": message, "p_updated_at": now}
        _apply(session, _PROGRESS, event, values)

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
        if not _apply(session, _SERVICE, event, live) and unless_finished:
            return False
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


async def record_pending(sessions: Sessions, event: TaskEvent) -> None:
    """The task's row, inserted as `pending` from what the event carries unless an earlier message made it."""

    def work(session: Session) -> None:
        _core(session).execute(insert_new(session, TASKS), _new_task(event))

    return await transaction(sessions, work)


@dataclass(frozen=True)
class TaskEnd:
    """How a task ended, as its row records it."""

    status: str
    reason: str | None
    finished_at: datetime
    findings_count: int
    severity_breakdown: dict[str, int]
    result_dir: str | None  # None: the disk refused the folder (the task is failed with that reason)
    verdicts: dict[str, Any] | None = None  # shared.results.verdicts.Verdicts, as stored


async def record_end(sessions: Sessions, task_id: str, end: TaskEnd, event_id: str | None, kind: str) -> bool:
    """Mark the task terminal and name its folder, and drop its staged outcomes; False when another writer
    finished it first."""

    values: dict[str, Any] = {
        "p_task_id": task_id,
        "p_status": end.status,
        "p_reason": end.reason,
        "p_finished_at": end.finished_at,
        "p_findings_count": end.findings_count,
        "p_severity_breakdown": dict(end.severity_breakdown),
        "p_result_dir": end.result_dir,
        "p_verdicts": end.verdicts,
        "p_progress_percent": 100.0 if end.status == "completed" else None,  # else left as it was
        "p_updated_at": utcnow(),
    }

    def work(session: Session) -> bool:
        core = _core(session)
        if core.execute(_END, values).rowcount == 0:
            return False
        core.execute(_UNSTAGE, {"p_task_id": task_id})
        if event_id is not None:
            _mark_processed(session, event_id, task_id, kind)
        return True

    return await transaction(sessions, work)
