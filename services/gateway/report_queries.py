"""The SQL of the model comparison: aggregates over the tasks, findings and service runs, no file read.

Each analyzed app counts once per analysis type: its latest `completed` or `partial` task. The heavy lifting
(grouping a million findings) happens in the database; Python receives at most a few rows per task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import CTE, case, func, select

from services.gateway.queries import ISSUE_KEY, Sessions
from shared.findings import SEVERITIES
from shared.models import FindingRow, ServiceRun, Task

REPORTED_STATUSES = ("completed", "partial")
MEASURED_SERVICES = (
    "performance",
    "ai",
)  # whose metrics the report reads (load figures, requirement reviews)


@dataclass(frozen=True)
class ChosenTask:
    task_id: str
    model_slug: str
    app_number: int
    analysis_type: str
    source_lines: int | None


@dataclass(frozen=True)
class ReportRows:
    """What the database answers; `shared`-free plain tuples so the figures can be computed (and tested) alone."""

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
    """Every aggregate the comparison needs, for one analysis type or all."""
    chosen = chosen_tasks(analysis_type)
    joined = FindingRow.task_id == chosen.c.task_id
    severity_rank = case(
        {level: index for index, level in enumerate(SEVERITIES)}, value=FindingRow.severity, else_=4
    )
    finding_groups = (
        chosen.c.model_slug,
        chosen.c.analysis_type,
        FindingRow.severity,
        FindingRow.tool,
        FindingRow.rule_id,
        FindingRow.cwe,
    )
    per_issue = (
        select(FindingRow.task_id, func.min(severity_rank).label("rank"), func.count().label("findings"))
        .join(chosen, joined)
        .group_by(FindingRow.task_id, ISSUE_KEY)
        .subquery()
    )
    issue_tools = (
        select(FindingRow.task_id, ISSUE_KEY.label("issue"), FindingRow.tool)
        .join(chosen, joined)
        .group_by(FindingRow.task_id, ISSUE_KEY, FindingRow.tool)
        .subquery()
    )
    tool_set = (
        select(issue_tools.c.task_id, func.aggregate_strings(issue_tools.c.tool, ",").label("tools"))
        .group_by(issue_tools.c.task_id, issue_tools.c.issue)
        .subquery()
    )
    async with sessions() as session:
        tasks = (await session.execute(select(chosen))).all()
        findings = (
            await session.execute(
                select(*finding_groups, func.count()).join(chosen, joined).group_by(*finding_groups)
            )
        ).all()
        issues = (
            await session.execute(
                select(
                    per_issue.c.task_id, per_issue.c.rank, func.count(), func.sum(per_issue.c.findings)
                ).group_by(per_issue.c.task_id, per_issue.c.rank)
            )
        ).all()
        tool_sets = (
            await session.execute(
                select(chosen.c.model_slug, chosen.c.analysis_type, tool_set.c.tools, func.count())
                .join(chosen, tool_set.c.task_id == chosen.c.task_id)
                .group_by(chosen.c.model_slug, chosen.c.analysis_type, tool_set.c.tools)
            )
        ).all()
        metrics = (
            await session.execute(
                select(ServiceRun.task_id, ServiceRun.service, ServiceRun.metrics)
                .join(chosen, ServiceRun.task_id == chosen.c.task_id)
                .where(ServiceRun.service.in_(MEASURED_SERVICES))
            )
        ).all()
    return ReportRows(
        tasks=[ChosenTask(*row) for row in tasks],
        findings=[(m, t, s, tool, rule, cwe, n) for m, t, s, tool, rule, cwe, n in findings],
        issues=[(task_id, SEVERITIES[rank], n, int(found)) for task_id, rank, n, found in issues],
        tool_sets=[(m, t, tools, n) for m, t, tools, n in tool_sets],
        metrics=[(task_id, service, dict(values or {})) for task_id, service, values in metrics],
    )
