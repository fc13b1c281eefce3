"""`--fail-on`: whether a finished task has findings at or above a severity, so a CI job can gate on Assay."""

from __future__ import annotations

from shared.results.findings import SEVERITIES


def at_or_above(breakdown: dict[str, int], threshold: str) -> int:
    """Findings of severity `threshold` or worse in a per-severity count."""
    worst_first = SEVERITIES[: SEVERITIES.index(threshold) + 1]
    return sum(breakdown.get(level, 0) for level in worst_first)


def gate_message(count: int, threshold: str, new_only: bool, against: str | None) -> str:
    what = "new finding" if new_only else "finding"
    since = (
        f" since {against}"
        if new_only and against
        else (" (no earlier run to compare with)" if new_only else "")
    )
    return f"{count} {what}{'s' if count != 1 else ''} of severity {threshold} or worse{since}"
