"""SARIF 2.1.0 logs built from normalized findings: one run per tool."""

from __future__ import annotations

from typing import Any

from shared.findings import Finding, ToolRun

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"

_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
# GitHub code scanning reads `security-severity` (0-10) to rank security results.
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}


def _result(finding: Finding) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "level": _LEVEL[finding.severity],
        "message": {"text": finding.message},
        "partialFingerprints": {"assayFingerprint/v1": finding.fingerprint},
        "properties": {"severity": finding.severity, "category": finding.category},
    }
    if finding.path:
        region: dict[str, int] = {}
        if finding.line:
            region["startLine"] = finding.line
            if finding.column:
                region["startColumn"] = finding.column
            if finding.end_line:
                region["endLine"] = finding.end_line
        location: dict[str, Any] = {"artifactLocation": {"uri": finding.path}}
        if region:
            location["region"] = region
        result["locations"] = [{"physicalLocation": location}]
    return result


def _rule(finding: Finding) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": finding.rule_id,
        "properties": {"security-severity": _SECURITY_SEVERITY[finding.severity], "tags": [finding.category]},
    }
    if finding.help_url:
        rule["helpUri"] = finding.help_url
    if finding.cwe:
        rule["properties"]["tags"].append(finding.cwe)
    return rule


def sarif_run(tool: str, version: str | None, findings: list[Finding]) -> dict[str, Any]:
    """One SARIF run for one tool."""
    rules: dict[str, dict[str, Any]] = {}
    for finding in findings:
        rules.setdefault(finding.rule_id, _rule(finding))
    driver: dict[str, Any] = {"name": tool, "rules": list(rules.values())}
    if version:
        driver["version"] = version
    return {"tool": {"driver": driver}, "results": [_result(f) for f in findings]}


def sarif_log(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": runs}


def sarif_for(tool_runs: list[ToolRun], findings: list[Finding]) -> dict[str, Any]:
    """A SARIF log with one run per tool that ran (tools without findings get an empty run)."""
    by_tool: dict[str, list[Finding]] = {run.tool: [] for run in tool_runs if run.status != "skipped"}
    for finding in findings:
        by_tool.setdefault(finding.tool, []).append(finding)
    versions = {run.tool: run.version for run in tool_runs}
    return sarif_log([sarif_run(tool, versions.get(tool), items) for tool, items in by_tool.items()])


def merge_logs(logs: list[dict[str, Any]]) -> dict[str, Any]:
    """One log holding every run of `logs` (the consolidated SARIF of a task)."""
    return sarif_log([run for log in logs for run in log.get("runs", [])])
