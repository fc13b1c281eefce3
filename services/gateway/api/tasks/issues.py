"""`GET /api/tasks/{id}/issues`: a task's findings grouped into issues (shared/results/issue_groups), most severe first."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Literal

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from sqlalchemy import select

from services.gateway.api.tasks.task import TaskIdPath, find_task
from services.gateway.auth import requires
from services.gateway.queries import ISSUE_KEY, Sessions, views
from services.gateway.resources import Resources
from services.gateway.schemas import FindingView
from shared.results.findings import SEVERITIES, Severity
from shared.results.issue_groups import most_severe
from shared.results.rule_table import weakness
from shared.store.models import FindingRow


class IssueView(msgspec.Struct, frozen=True, kw_only=True):
    """One issue: the findings of every tool that point at one place and mean one weakness."""

    group_key: str
    severity: str  # the most severe of its findings
    weakness: str  # CWE-<n>, or <tool>:<rule> where no CWE is known
    path: str | None
    line: int | None
    end_line: int | None
    tools: list[str]
    rule_ids: list[str]
    findings_count: int
    findings: list[FindingView]
    # of the file it is in: vendored, generated, minified and test issues are left out by default
    origin: str = "app"


class IssuePage(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `GET /api/tasks/{task_id}/issues`: `total` issues, holding `findings_total` findings."""

    task_id: str
    issues: list[IssueView]
    total: int
    findings_total: int
    limit: int
    offset: int
    left_out: dict[str, int] = {}  # issues not listed because their code is not the app's own, by origin


def issue_of(key: str, members: list[FindingView]) -> IssueView:
    lines = [finding.line for finding in members if finding.line is not None]
    ends = [finding.end_line or finding.line for finding in members if finding.line is not None]
    first = members[0]
    return IssueView(
        group_key=key,
        severity=most_severe([finding.severity for finding in members]),
        weakness=weakness(first.tool, first.rule_id, first.cwe),
        path=first.path,
        line=min(lines) if lines else None,
        end_line=max(end for end in ends if end is not None) if lines else None,
        tools=sorted({finding.tool for finding in members}),
        rule_ids=sorted({f"{finding.tool}:{finding.rule_id}" for finding in members}),
        findings_count=len(members),
        findings=members,
        origin=first.origin,
    )


async def task_issues(sessions: Sessions, task_id: str) -> list[IssueView]:
    """Every issue of the task, most severe first, then by place."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(ISSUE_KEY, FindingRow).where(FindingRow.task_id == task_id).order_by(FindingRow.id)
            )
        ).all()
    groups: dict[str, list[FindingRow]] = {}
    for key, row in rows:
        groups.setdefault(key, []).append(row)
    issues = [issue_of(key, views(members, FindingView)) for key, members in groups.items()]
    return sorted(
        issues, key=lambda i: (SEVERITIES.index(i.severity), i.path or "", i.line or 0, i.group_key)
    )


@get(
    "/api/tasks/{task_id:str}/issues",
    summary="A task's findings grouped into issues (one issue, however many tools reported it)",
    tags=["tasks"],
    **requires("read", 404, 422, 503),
)
async def get_issues(
    resources: NamedDependency[Resources],
    task_id: TaskIdPath,
    tool: Annotated[str | None, QueryParameter(max_length=64)] = None,
    severity: FromQuery[Severity | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    offset: Annotated[int, QueryParameter(ge=0)] = 0,
    origin: Annotated[
        Literal["app", "all"],
        QueryParameter(
            description="`app` (the default): the app's own code only; `all`: vendored, generated, "
            "minified and test code too"
        ),
    ] = "app",
) -> IssuePage:
    await find_task(resources, task_id)  # 404 for an unknown task rather than an empty page
    issues = await task_issues(resources.sessions, task_id)
    chosen = [
        issue
        for issue in issues
        if (severity is None or issue.severity == severity) and (tool is None or tool in issue.tools)
    ]
    left_out = Counter(issue.origin for issue in chosen if origin == "app" and issue.origin != "app")
    chosen = [issue for issue in chosen if origin == "all" or issue.origin == "app"]
    return IssuePage(
        task_id=task_id,
        issues=chosen[offset : offset + limit],
        total=len(chosen),
        findings_total=sum(issue.findings_count for issue in chosen),
        limit=limit,
        offset=offset,
        left_out=dict(sorted(left_out.items())),
    )
