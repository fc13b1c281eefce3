"""`assay diff A [B]`: what changed between two runs of an app, as the gateway computes it."""

from __future__ import annotations

from typing import Any

from services.cli.render import table
from shared.results.findings import SEVERITIES


def finding_rows(findings: list[dict[str, Any]]) -> list[list[object]]:
    return [
        [
            finding["severity"],
            finding["tool"],
            finding["rule_id"],
            f"{finding.get('path') or ''}{':' + str(finding['line']) if finding.get('line') else ''}",
            finding["message"][:80],
        ]
        for finding in findings
    ]


def render_diff(diff: dict[str, Any]) -> str:
    """Counts per severity, then every new and fixed finding."""
    against = diff["against"] or "nothing (no earlier completed run of this app and type)"
    lines = [
        f"{diff['task_id']} against {against}: {len(diff['new'])} new, {len(diff['fixed'])} fixed, "
        f"{diff['unchanged']} unchanged"
    ]
    rows: list[list[object]] = [
        [level, diff["new_by_severity"].get(level, 0), diff["fixed_by_severity"].get(level, 0)]
        for level in SEVERITIES
    ]
    lines += ["", *table(["severity", "new", "fixed"], rows, numeric=(1, 2))]
    for title, findings in (("new", diff["new"]), ("fixed", diff["fixed"])):
        if findings:
            lines += [
                "",
                f"{title}:",
                *table(["severity", "tool", "rule", "where", "message"], finding_rows(findings)),
            ]
    return "\n".join(lines)
