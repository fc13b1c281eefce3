"""`GET /api/tasks/{id}/diff`: what changed between two runs, by finding fingerprint (stable across line shifts).

Fingerprints are compared as multisets: a finding reported twice in the newer run and once in the older one is once
new and once unchanged.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import ClientException
from litestar.params import QueryParameter
from sqlalchemy import select

from services.gateway.api.tasks.task import TaskIdPath, find_task
from services.gateway.auth import requires
from services.gateway.errors import invalid
from services.gateway.queries import Sessions, views
from services.gateway.resources import Resources
from services.gateway.schemas import FindingView, TaskDetail
from shared.results.findings import SEVERITIES
from shared.store.models import FindingRow, Task
from shared.wire.messages import TERMINAL_STATUSES
from shared.wire.tasks import TASK_ID_PATTERN


class RunDiff(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `GET /api/tasks/{task_id}/diff`: `new` and `fixed` findings in full, `unchanged` counted."""

    task_id: str
    against: str | None  # None: no earlier completed run of the app and type, so every finding is new
    new: list[FindingView]
    fixed: list[FindingView]  # findings of `against` that the task no longer has
    unchanged: int
    new_by_severity: dict[str, int]
    fixed_by_severity: dict[str, int]


def unmatched(findings: list[FindingView], others: list[FindingView]) -> list[FindingView]:
    """The findings of `findings` left once each fingerprint of `others` has matched one of them."""
    remaining = Counter(finding.fingerprint for finding in others)
    left = []
    for finding in findings:
        if remaining[finding.fingerprint] > 0:
            remaining[finding.fingerprint] -= 1
        else:
            left.append(finding)
    return left


def diff_findings(
    current: list[FindingView], previous: list[FindingView]
) -> tuple[list[FindingView], list[FindingView], int]:
    """(new, fixed, unchanged count) of `current` against `previous`, by fingerprint as a multiset."""
    new = unmatched(current, previous)
    return new, unmatched(previous, current), len(current) - len(new)


def by_severity(findings: list[FindingView]) -> dict[str, int]:
    counts = Counter(finding.severity for finding in findings)
    return {level: counts.get(level, 0) for level in SEVERITIES}


async def previous_run(sessions: Sessions, task: TaskDetail) -> str | None:
    """The newest completed task of the same app and analysis type created before `task`."""
    async with sessions() as session:
        return await session.scalar(
            select(Task.task_id)
            .where(
                Task.model_slug == task.model_slug,
                Task.app_number == task.app_number,
                Task.analysis_type == task.analysis_type,
                Task.status == "completed",
                Task.created_at < task.created_at,
                Task.task_id != task.task_id,
            )
            .order_by(Task.created_at.desc())
            .limit(1)
        )


async def findings_of(sessions: Sessions, task_id: str) -> list[FindingView]:
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(FindingRow).where(FindingRow.task_id == task_id).order_by(FindingRow.id)
            )
        ).all()
    return views(rows, FindingView)


@get(
    "/api/tasks/{task_id:str}/diff",
    summary="New, fixed and unchanged findings against another run (default: the previous completed one)",
    description="409 while either task has not ended.",
    tags=["tasks"],
    **requires("read", 404, 409, 422, 503),
)
async def get_diff(
    resources: NamedDependency[Resources],
    task_id: TaskIdPath,
    against: Annotated[
        str | None, QueryParameter(pattern=TASK_ID_PATTERN, description="task to compare with")
    ] = None,
) -> RunDiff:
    task = await find_task(resources, task_id)
    if task.status not in TERMINAL_STATUSES:
        raise ClientException(
            status_code=409, detail=f"task {task_id} is still {task.status}: diff it once it ends"
        )
    if against == task_id:
        raise invalid("against", "a task cannot be compared with itself", source="query")
    if against is not None:
        other = await find_task(resources, against)
        if other.status not in TERMINAL_STATUSES:
            raise ClientException(status_code=409, detail=f"task {against} is still {other.status}")
    else:
        against = await previous_run(resources.sessions, task)
    current = await findings_of(resources.sessions, task_id)
    previous = await findings_of(resources.sessions, against) if against else []
    new, fixed, unchanged = diff_findings(current, previous)
    return RunDiff(
        task_id=task_id,
        against=against,
        new=new,
        fixed=fixed,
        unchanged=unchanged,
        new_by_severity=by_severity(new),
        fixed_by_severity=by_severity(fixed),
    )
