"""The tools that did not run in full in the counted tasks: per analysis type, each tool whose runs were `skipped`
or `partial`, in how many tasks and why, so that a reader knows which figures rest on fewer tools than the type
names (an advisory audit skipped offline finds no vulnerable dependency, whatever the app has)."""

from __future__ import annotations

from collections import Counter

import msgspec

from services.gateway.api.reports.queries import CountedTask, ToolRunNote

SHORT_STATUSES = ("skipped", "partial")


class ToolShortfall(msgspec.Struct, frozen=True, kw_only=True):
    """One tool of one analysis type that was `skipped` (or ran `partial`) in `tasks` of the type's `of_tasks`
    counted tasks."""

    analysis_type: str
    service: str
    tool: str
    status: str  # skipped | partial
    tasks: int
    of_tasks: int
    reasons: list[
        str
    ]  # distinct, the most frequent first ("" never: a run without a reason is "no reason given")


def tool_shortfalls(tasks: list[CountedTask], notes: list[ToolRunNote]) -> list[ToolShortfall]:
    """The shortfalls of the counted tasks' tool runs, by analysis type, tool and status."""
    kind_of = {task.task_id: task.analysis_type for task in tasks}
    per_type = Counter(kind_of.values())
    reasons: dict[tuple[str, str, str, str], Counter[str]] = {}
    for note in notes:
        kind = kind_of.get(note.task_id)
        if kind is None or note.status not in SHORT_STATUSES:
            continue
        key = (kind, note.service, note.tool, note.status)
        reasons.setdefault(key, Counter())[note.reason or "no reason given"] += 1
    return [
        ToolShortfall(
            analysis_type=kind,
            service=service,
            tool=tool,
            status=status,
            # One tool run per task, service and tool (the table's unique key): the reasons' counts sum to tasks.
            tasks=sum(counted.values()),
            of_tasks=per_type[kind],
            reasons=sorted(counted, key=lambda reason: (-counted[reason], reason)),
        )
        for (kind, service, tool, status), counted in sorted(reasons.items())
    ]
