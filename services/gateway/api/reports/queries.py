"""The SQL of the model comparison: the tasks it counts with their service runs, and the tasks it leaves out.

Scope: every task, or one batch's (`batch`), of one analysis type or all. Each app counts once per analysis type,
with its newest `completed` task. Tasks in scope that ended otherwise (partial, failed, cancelled) are read too, so
that the report lists those it leaves out instead of mixing them in. Findings are not grouped again here: the
persister stores each service run's finding summary (shared/results/finding_summary) with the run.

The counted tasks and their runs come from one statement: chosen in one query and joined in another, a task that
completed between the two (so became its app's newest) had runs but no chosen row, and the report answered 500
while tasks were completing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Select, Text, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.queries import Sessions
from shared.results.finding_summary import FindingSummary, decode_summary
from shared.results.verdicts import Verdicts
from shared.store.models import ServiceRun, Task, ToolRunRow

log = logging.getLogger(__name__)

COUNTED_STATUS = "completed"
SHORT_TOOL_STATUSES = ("skipped", "partial")  # the tool runs the report names: the tool did not run in full
TASK_IDS_PER_STATEMENT = 500  # bound parameters per IN list, well under SQLite's and asyncpg's limits
T = TypeVar("T")
Query = TypeVar("Query", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class Scope:
    """Which tasks a report reads."""

    analysis_type: str | None = None  # None: every type
    batch: str | None = None  # None: every task, whichever batch queued it


@dataclass(frozen=True)
class Run:
    service: str
    summary: FindingSummary | None  # None: recorded before summaries existed, or unreadable
    metrics: dict[str, Any]


@dataclass(frozen=True)
class CountedTask:
    """An app's newest completed task of one analysis type, with what its services reported."""

    task_id: str
    model_slug: str
    app_number: int
    analysis_type: str
    source_lines: int | None
    created_at: datetime
    verdicts: Verdicts | None
    waived_rules: tuple[str, ...]
    runs: list[Run] = field(default_factory=list)


@dataclass(frozen=True)
class OtherTask:
    """A task in scope that did not complete (or has not ended yet)."""

    task_id: str
    model_slug: str
    app_number: int
    analysis_type: str
    status: str
    status_reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class ToolRunNote:
    """A tool run of a counted task that did not run in full."""

    task_id: str
    service: str
    tool: str
    status: str
    reason: str | None


@dataclass(frozen=True)
class ReportRows:
    """What the database answers, as plain values, so the figures can be computed (and tested) alone."""

    tasks: list[CountedTask]
    others: list[OtherTask]
    short_tool_runs: list[ToolRunNote] = field(default_factory=list)


def _in_scope(query: Query, scope: Scope) -> Query:
    if scope.analysis_type is not None:
        query = query.where(Task.analysis_type == scope.analysis_type)
    if scope.batch is not None:
        query = query.where(Task.batch_id == scope.batch)
    return query


def counted_tasks_and_runs(scope: Scope) -> Select[*tuple[Any, ...]]:
    """One row per service run of each counted task (a task without runs: one row of NULLs on the run side)."""
    ranked = _in_scope(
        select(
            Task.task_id,
            Task.model_slug,
            Task.app_number,
            Task.analysis_type,
            Task.source_lines,
            Task.created_at,
            # JSON columns as their text, decoded once per task by msgspec (the JSON type would parse them again for
            # every run row the join repeats them on, with json.loads).
            cast(Task.verdicts, Text).label("verdicts"),
            cast(Task.waived_rules, Text).label("waived_rules"),
            func.row_number()
            .over(
                partition_by=(Task.model_slug, Task.app_number, Task.analysis_type),
                order_by=(Task.created_at.desc(), Task.task_id.desc()),
            )
            .label("newest"),
        ).where(Task.status == COUNTED_STATUS),
        scope,
    ).subquery()
    # The summary as its JSON text: msgspec decodes it into its Struct several times faster than the JSON type's
    # json.loads would into dicts.
    return (
        select(
            *(ranked.c[name] for name in ranked.c.keys() if name != "newest"),
            ServiceRun.service,
            cast(ServiceRun.finding_summary, Text),
            cast(ServiceRun.metrics, Text),
        )
        .select_from(ranked)
        .outerjoin(ServiceRun, ServiceRun.task_id == ranked.c.task_id)
        .where(ranked.c.newest == 1)
    )


def _summary(task_id: str, service: str, stored: str | None) -> FindingSummary | None:
    if not stored or stored == "null":
        return None
    try:
        return decode_summary(stored)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        log.warning(
            "unreadable finding summary of %s/%s: %s", task_id, service, error, extra={"task_id": task_id}
        )
        return None


_VERDICTS = msgspec.json.Decoder(Verdicts | None)
_NAMES = msgspec.json.Decoder(list[str])
_METRICS = msgspec.json.Decoder(dict[str, Any])


def _decoded(decoder: msgspec.json.Decoder[T], task_id: str, what: str, stored: str | None, empty: T) -> T:
    """A JSON column's text decoded, `empty` for NULL or for text that is no such value (said in the log)."""
    if not stored or stored == "null":
        return empty
    try:
        return decoder.decode(stored)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        log.warning("unreadable %s of %s: %s", what, task_id, error, extra={"task_id": task_id})
        return empty


async def report_rows(sessions: Sessions, scope: Scope) -> ReportRows:
    """Every figure's input: the counted tasks with their runs, and the other tasks in scope."""
    async with sessions() as session:
        rows = (await session.execute(counted_tasks_and_runs(scope))).all()
        others = (
            await session.execute(
                _in_scope(
                    select(
                        Task.task_id,
                        Task.model_slug,
                        Task.app_number,
                        Task.analysis_type,
                        Task.status,
                        Task.status_reason,
                        Task.created_at,
                    ).where(Task.status != COUNTED_STATUS),
                    scope,
                )
            )
        ).all()
    tasks: dict[str, CountedTask] = {}
    for task_id, model, number, kind, lines, created, verdicts, waived, service, stored, metrics in rows:
        task = tasks.get(task_id)
        if task is None:
            names: list[str] = _decoded(_NAMES, task_id, "waived rules", waived, [])
            task = tasks[task_id] = CountedTask(
                task_id=task_id,
                model_slug=model,
                app_number=number,
                analysis_type=kind,
                source_lines=lines,
                created_at=created,
                verdicts=_decoded(_VERDICTS, task_id, "verdicts", verdicts, None),
                waived_rules=tuple(names),
            )
        if service is not None:
            measured = _decoded(_METRICS, task_id, "metrics", metrics, {})
            task.runs.append(Run(service, _summary(task_id, service, stored), measured))
    async with sessions() as session:
        short = await _short_tool_runs(session, list(tasks))
    ordered = sorted(tasks.values(), key=lambda t: (t.model_slug, t.analysis_type, t.app_number))
    return ReportRows(
        tasks=ordered,
        others=[
            OtherTask(task_id, model, number, kind, status, reason, created)
            for task_id, model, number, kind, status, reason, created in others
        ],
        short_tool_runs=short,
    )


async def _short_tool_runs(session: AsyncSession, task_ids: list[str]) -> list[ToolRunNote]:
    """The skipped and partial tool runs of exactly the counted tasks: by their ids, not by choosing the newest
    tasks again (a task completing in between would swap the tasks the runs belong to)."""
    notes = []
    for start in range(0, len(task_ids), TASK_IDS_PER_STATEMENT):
        chunk = task_ids[start : start + TASK_IDS_PER_STATEMENT]
        query = select(
            ToolRunRow.task_id, ToolRunRow.service, ToolRunRow.tool, ToolRunRow.status, ToolRunRow.reason
        ).where(ToolRunRow.task_id.in_(chunk), ToolRunRow.status.in_(SHORT_TOOL_STATUSES))
        notes += [ToolRunNote(*row) for row in (await session.execute(query)).all()]
    return notes
