"""The SQL of the model comparison: the chosen tasks and their service runs, no file read.

Each analyzed app counts once per analysis type: its latest `completed` or `partial` task. Findings are not
grouped again here: the persister stores each service run's finding summary (shared/finding_summary) with the run,
so the comparison reads one small row per task and service however many findings there are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import CTE, Text, cast, func, select

from services.gateway.queries import Sessions
from shared.finding_summary import decode_summary
from shared.models import ServiceRun, Task

log = logging.getLogger(__name__)

REPORTED_STATUSES = ("completed", "partial")


@dataclass(frozen=True)
class ChosenTask:
    task_id: str
    model_slug: str
    app_number: int
    analysis_type: str
    source_lines: int | None


@dataclass(frozen=True)
class ReportRows:
    """What the database answers, as plain tuples, so the figures can be computed (and tested) alone."""

    tasks: list[ChosenTask]
    # (model, type, severity, tool, rule_id, cwe, findings)
    findings: list[tuple[str, str, str, str, str, str | None, int]]
    # (task_id, issue severity, issues, findings in those issues)
    issues: list[tuple[str, str, int, int]]
    # (model, type, comma-separated tools of one issue, issues)
    tool_sets: list[tuple[str, str, str, int]]
    # (task_id, service, metrics)
    metrics: list[tuple[str, str, dict[str, Any]]]


def chosen_tasks(analysis_type: str | None) -> CTE:
    """The latest completed-or-partial task of each (model, app, analysis type)."""
    ranked = select(
        Task.task_id,
        Task.model_slug,
        Task.app_number,
        Task.analysis_type,
        Task.source_lines,
        func.row_number()
        .over(
            partition_by=(Task.model_slug, Task.app_number, Task.analysis_type),
            order_by=(Task.created_at.desc(), Task.task_id.desc()),
        )
        .label("newest"),
    ).where(Task.status.in_(REPORTED_STATUSES))
    if analysis_type is not None:
        ranked = ranked.where(Task.analysis_type == analysis_type)
    inner = ranked.subquery()
    return (
        select(
            inner.c.task_id,
            inner.c.model_slug,
            inner.c.app_number,
            inner.c.analysis_type,
            inner.c.source_lines,
        )
        .where(inner.c.newest == 1)
        .cte("chosen")
    )


async def report_rows(sessions: Sessions, analysis_type: str | None = None) -> ReportRows:
    """Every figure's input, for one analysis type or all: the chosen tasks, then their runs' summaries."""
    chosen = chosen_tasks(analysis_type)
    async with sessions() as session:
        tasks = [ChosenTask(*row) for row in (await session.execute(select(chosen))).all()]
        runs = (
            await session.execute(
                # The summary as its JSON text: msgspec decodes it into its Struct several times faster than
                # the JSON type's json.loads would into dicts.
                select(
                    ServiceRun.task_id,
                    ServiceRun.service,
                    cast(ServiceRun.finding_summary, Text),
                    ServiceRun.metrics,
                ).join(chosen, ServiceRun.task_id == chosen.c.task_id)
            )
        ).all()
    of_task = {task.task_id: (task.model_slug, task.analysis_type) for task in tasks}
    findings: dict[tuple[str, str, str, str, str, str | None], int] = {}
    issues: dict[tuple[str, str], list[int]] = {}
    tool_sets: dict[tuple[str, str, str], int] = {}
    metrics = []
    for task_id, service, stored, measured in runs:
        model, kind = of_task[task_id]
        if measured:
            metrics.append((task_id, service, dict(measured)))
        if not stored or stored == "null":
            continue  # a run recorded before summaries existed
        try:
            summary = decode_summary(stored)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            log.warning(
                "unreadable finding summary of %s/%s: %s", task_id, service, error, extra={"task_id": task_id}
            )
            continue
        for tool, rule, severity, cwe, n in summary.rules:
            key = (model, kind, severity, tool, rule, cwe)
            findings[key] = findings.get(key, 0) + n
        for severity, (count, found) in summary.issues.items():
            totals = issues.setdefault((task_id, severity), [0, 0])
            totals[0] += count
            totals[1] += found
        for tools, n in summary.tool_sets.items():
            tool_sets[(model, kind, tools)] = tool_sets.get((model, kind, tools), 0) + n
    return ReportRows(
        tasks=tasks,
        findings=[(*key, n) for key, n in findings.items()],
        issues=[(task_id, severity, n, found) for (task_id, severity), (n, found) in issues.items()],
        tool_sets=[(*key, n) for key, n in tool_sets.items()],
        metrics=metrics,
    )
