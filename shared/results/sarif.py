"""SARIF 2.1.0 logs built from normalized findings: one run per tool, placed the way code-scanning tools expect.

- Paths inside the app are relative to the `APPROOT` base (`originalUriBaseIds`), so a viewer that knows where the
  apps root is resolves them; URLs (checks of a running app) stay absolute.
- Rules carry a short description (the tool's name for the rule where it gives one, else its first message) and
  the help link where the tool has one.
- `partialFingerprints` carry Assay's fingerprint, so results are matched across runs as Assay matches them.
- `security-severity` (0-10, read by GitHub code scanning to rank security results) is set on security rules only.
"""

from __future__ import annotations

from typing import Any

from shared.results.findings import Finding, ToolRun

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
APP_ROOT = "APPROOT"

_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}
SECURITY_CATEGORIES = frozenset({"security", "secrets", "dependency", "http"})
# Keys of `Finding.extra` under which tools give a rule's name (bandit, pylint, npm audit …).
_RULE_NAME_KEYS = ("test_name", "symbol", "title", "check_name")


def _is_url(path: str) -> bool:
    return "://" in path


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
        artifact: dict[str, str] = {"uri": finding.path}
        if not _is_url(finding.path):
            artifact["uriBaseId"] = APP_ROOT
        location: dict[str, Any] = {"artifactLocation": artifact}
        if region:
            location["region"] = region
        result["locations"] = [{"physicalLocation": location}]
    return result


def _rule_name(finding: Finding) -> str:
    for key in _RULE_NAME_KEYS:
        value = finding.extra.get(key)
        if isinstance(value, str) and value:
            return value
    return finding.message.splitlines()[0][:200] if finding.message else finding.rule_id


def _rule(finding: Finding) -> dict[str, Any]:
    tags = [finding.category, *([finding.cwe] if finding.cwe else [])]
    rule: dict[str, Any] = {
        "id": finding.rule_id,
        "shortDescription": {"text": _rule_name(finding)},
        "fullDescription": {"text": finding.message or finding.rule_id},
        "properties": {"tags": tags},
    }
    if finding.category in SECURITY_CATEGORIES:
        rule["properties"]["tags"].append("security")
        rule["properties"]["security-severity"] = _SECURITY_SEVERITY[finding.severity]
    if finding.help_url:
        rule["helpUri"] = finding.help_url
        rule["help"] = {"text": f"See {finding.help_url}"}
    return rule


def sarif_run(
    tool: str, version: str | None, findings: list[Finding], app_root: str | None = None
) -> dict[str, Any]:
    """One SARIF run for one tool; `app_root` (`<model>/app<N>/`, relative to the apps root) names the base of
    the app-relative paths."""
    rules: dict[str, dict[str, Any]] = {}
    for finding in findings:
        rules.setdefault(finding.rule_id, _rule(finding))
    driver: dict[str, Any] = {"name": tool, "rules": list(rules.values())}
    if version:
        driver["version"] = version
    run: dict[str, Any] = {"tool": {"driver": driver}, "results": [_result(f) for f in findings]}
    if app_root:
        description = "the analyzed app's folder, relative to the apps root (ASSAY_APPS_DIR)"
        run["originalUriBaseIds"] = {APP_ROOT: {"uri": app_root, "description": {"text": description}}}
    return run


def sarif_log(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": runs}


def sarif_for(
    tool_runs: list[ToolRun], findings: list[Finding], app_root: str | None = None
) -> dict[str, Any]:
    """A SARIF log with one run per tool that ran (tools without findings get an empty run)."""
    by_tool: dict[str, list[Finding]] = {run.tool: [] for run in tool_runs if run.status != "skipped"}
    for finding in findings:
        by_tool.setdefault(finding.tool, []).append(finding)
    versions = {run.tool: run.version for run in tool_runs}
    return sarif_log(
        [sarif_run(tool, versions.get(tool), items, app_root) for tool, items in by_tool.items()]
    )


def app_root_of(model_slug: str, app_number: int) -> str:
    """The `APPROOT` base of an app: `<model_slug>/app<N>/`, relative to the apps root."""
    return f"{model_slug}/app{app_number}/"


def merge_logs(logs: list[dict[str, Any]]) -> dict[str, Any]:
    """One log holding every run of `logs` (the consolidated SARIF of a task)."""
    return sarif_log([run for log in logs for run in log.get("runs", [])])
