"""The summary of one service's findings that the persister stores with its run, so that the model comparison
reads one small row per task and service instead of grouping every finding again (`service_runs.finding_summary`).

Both ways of counting are kept, each split by what the report filters on: findings per (tool, rule, severity, CWE,
origin, confirmed), and issue groups per (weakness, severity, origin, confirmed, the rules that reported them).
Summaries written before origins and proofs existed hold `rules`, `issues` and `tool_sets` instead; `counts`
reads either as the current shape (their findings counted as `app` code, unconfirmed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgspec

from shared.results.findings import Finding
from shared.results.issue_groups import group_keys, most_severe
from shared.results.rule_table import weakness
from shared.results.waivers import rule_name

# (tool, rule_id, severity, cwe, origin, confirmed, findings)
FindingCount = tuple[str, str, str, str | None, str, bool, int]
# (weakness, severity, origin, confirmed, the `tool:rule`s of its findings sorted and comma-joined, issues, findings)
GroupCount = tuple[str, str, str, bool, str, int, int]


class FindingSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Counts of one service's findings: per kind of finding, and per kind of issue group."""

    findings: list[FindingCount] = []
    groups: list[GroupCount] = []
    # The shape before origins and proofs (read, never written): findings per rule, issues per severity.
    rules: list[tuple[str, str, str, str | None, int]] = []
    issues: dict[str, tuple[int, int]] = {}


def summarize(findings: Sequence[Finding], keys: Sequence[str] | None = None) -> dict[str, Any]:
    """The summary as stored (JSON-ready); `keys` are the findings' issue group keys when already computed."""
    keys = group_keys(findings) if keys is None else keys
    kinds = Counter((f.tool, f.rule_id, f.severity, f.cwe, f.origin, f.proof is not None) for f in findings)
    members: dict[str, list[Finding]] = {}
    for finding, key in zip(findings, keys, strict=True):
        members.setdefault(key, []).append(finding)
    groups: Counter[tuple[str, str, str, bool, str]] = Counter()
    in_groups: Counter[tuple[str, str, str, bool, str]] = Counter()
    for group in members.values():
        first = group[
            0
        ]  # one place, one weakness: its findings share the file (so the origin) and the weakness
        kind = (
            weakness(first.tool, first.rule_id, first.cwe),
            most_severe([f.severity for f in group]),
            first.origin,
            any(f.proof is not None for f in group),
            ",".join(sorted({rule_name(f.tool, f.rule_id) for f in group})),
        )
        groups[kind] += 1
        in_groups[kind] += len(group)
    summary = FindingSummary(
        findings=[(*kind, n) for kind, n in sorted(kinds.items(), key=str)],
        groups=[(*kind, n, in_groups[kind]) for kind, n in sorted(groups.items(), key=str)],
    )
    return msgspec.to_builtins(summary)  # type: ignore[no-any-return]


_decoder = msgspec.json.Decoder(FindingSummary)


def decode_summary(stored: str | bytes) -> FindingSummary:
    """A stored summary from its JSON text, in the current shape; raises msgspec.DecodeError/ValidationError when it
    is not one."""
    summary = _decoder.decode(stored)
    if summary.findings or not (summary.rules or summary.issues):
        return summary
    # Written before origins and proofs: every finding was counted as the app's, none confirmed; the rules of its
    # issues were not kept (an empty rule list: no tool-overlap figure, never waived by rule).
    return FindingSummary(
        findings=[
            (tool, rule, severity, cwe, "app", False, n) for tool, rule, severity, cwe, n in summary.rules
        ],
        groups=[
            ("", severity, "app", False, "", n, found) for severity, (n, found) in summary.issues.items()
        ],
    )
