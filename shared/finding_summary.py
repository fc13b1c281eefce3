"""The summary of one service's findings that the persister stores with its run, so that the model comparison
reads one small row per task and service instead of grouping every finding again (`service_runs.finding_summary`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgspec

from shared.findings import Finding
from shared.issue_groups import group_keys, most_severe


class FindingSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Counts of one service's findings, both ways: findings per rule, and issues (issue groups)."""

    rules: list[tuple[str, str, str, str | None, int]]  # (tool, rule_id, severity, cwe, findings)
    issues: dict[str, tuple[int, int]]  # issue severity (its worst finding's) -> (issues, findings in them)
    tool_sets: dict[str, int]  # the tools that found one issue, sorted and comma-joined -> issues


def summarize(findings: Sequence[Finding], keys: Sequence[str] | None = None) -> dict[str, Any]:
    """The summary as stored (JSON-ready); `keys` are the findings' issue group keys when already computed."""
    keys = group_keys(findings) if keys is None else keys
    rules = Counter((f.tool, f.rule_id, f.severity, f.cwe) for f in findings)
    members: dict[str, list[Finding]] = {}
    for finding, key in zip(findings, keys, strict=True):
        members.setdefault(key, []).append(finding)
    issues: Counter[str] = Counter()
    in_issues: Counter[str] = Counter()
    tool_sets: Counter[str] = Counter()
    for group in members.values():
        severity = most_severe([f.severity for f in group])
        issues[severity] += 1
        in_issues[severity] += len(group)
        tool_sets[",".join(sorted({f.tool for f in group}))] += 1
    summary = FindingSummary(
        rules=[
            (tool, rule, severity, cwe, n)
            for (tool, rule, severity, cwe), n in sorted(rules.items(), key=str)
        ],
        issues={severity: (issues[severity], in_issues[severity]) for severity in sorted(issues)},
        tool_sets=dict(sorted(tool_sets.items())),
    )
    return msgspec.to_builtins(summary)  # type: ignore[no-any-return]


_decoder = msgspec.json.Decoder(FindingSummary)


def decode_summary(stored: str | bytes) -> FindingSummary:
    """A stored summary from its JSON text; raises msgspec.DecodeError/ValidationError when it is not one."""
    return _decoder.decode(stored)
