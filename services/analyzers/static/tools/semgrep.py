"""semgrep: Assay's own rule set (rules/*.yml) over the app's Python, JavaScript, templates and SQL files, fully
offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from services.analyzers.static.tools.cli_tool import CliTool
from services.analyzers.static.tools.source import AppSource, as_arguments
from shared.operations.process import ProcessOutcome
from shared.results.findings import Finding, Severity

RULES = Path(__file__).resolve().parent.parent / "rules"  # every *.yml in it is one rule file
# The rules say CRITICAL/HIGH/MEDIUM/LOW; semgrep's older ERROR/WARNING/INFO still read as high/medium/low.
SEVERITY: dict[str, Severity] = {
    "CRITICAL": "critical",
    "HIGH": "high",
    "MEDIUM": "medium",
    "LOW": "low",
    "ERROR": "high",
    "WARNING": "medium",
    "INFO": "low",
}


class SemgrepPosition(msgspec.Struct):
    line: int
    col: int | None = None


class SemgrepLocation(msgspec.Struct):
    start: SemgrepPosition


class SemgrepVariable(msgspec.Struct):
    location: SemgrepLocation


class SemgrepTrace(msgspec.Struct):
    """How a taint rule's value got to its sink: where it came from and the variables it passed through."""

    taint_source: Any = None  # ["CliLoc", [location, text]] (or a call trace, which has no single place)
    intermediate_vars: list[SemgrepVariable] = []


class SemgrepExtra(msgspec.Struct):
    message: str
    severity: str
    metadata: dict[str, Any] = {}
    dataflow_trace: SemgrepTrace | None = None


def flow_lines(trace: SemgrepTrace | None) -> list[int]:
    """The lines a taint finding's value came from and passed through before its sink (the finding's own line)."""
    if trace is None:
        return []
    lines = {variable.location.start.line for variable in trace.intermediate_vars}
    source = trace.taint_source
    if isinstance(source, list) and len(source) == 2 and source[0] == "CliLoc":
        lines.add(msgspec.convert(source[1][0], SemgrepLocation).start.line)
    return sorted(lines)


class SemgrepResult(msgspec.Struct):
    check_id: str
    path: str
    start: SemgrepPosition
    end: SemgrepPosition
    extra: SemgrepExtra


class SemgrepError(msgspec.Struct):
    """One thing semgrep could not do: a rule that timed out on a file, a file it could not parse, a bad rule."""

    type: Any = None  # a name ("Timeout"), or [name, details] for some kinds
    level: str = "error"
    message: str = ""
    path: str | None = None
    rule_id: str | None = None


class SemgrepReport(msgspec.Struct):
    results: list[SemgrepResult]
    errors: list[SemgrepError] = []


GAPS_LISTED = 5  # how many of semgrep's errors a partial record names


def describe(error: SemgrepError) -> str:
    """`Timeout: python-sql-string-formatting on backend/app.py`, from one of semgrep's errors."""
    kind = error.type[0] if isinstance(error.type, list) and error.type else error.type or error.level
    rule = f" {rule_name(error.rule_id)}" if error.rule_id else ""
    where = f" on {error.path}" if error.path else ""
    return f"{kind}:{rule}{where}" if rule or where else f"{kind}: {' '.join(error.message.split())[:200]}"


def rule_name(check_id: str) -> str:
    """semgrep prefixes a local rule's id with the config file's folder (`work.main.….rules.js-eval`)."""
    return check_id.rsplit(".", 1)[-1]


def relocated(value: Any, prefix: str) -> Any:
    """`value` (a piece of a semgrep report) with every `path` under `prefix` made relative to it."""
    if isinstance(value, dict):
        return {
            key: item[len(prefix) :]
            if key == "path" and isinstance(item, str) and item.startswith(prefix)
            else relocated(item, prefix)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [relocated(item, prefix) for item in value]
    return value


def _part(whole: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The part of a decoded combined report about the files under `prefix`, paths relative to it."""

    def mine(entry: Any) -> bool:
        path = entry.get("path") if isinstance(entry, dict) else None
        return isinstance(path, str) and path.startswith(prefix)

    part = dict(whole)
    part["results"] = [relocated(result, prefix) for result in whole["results"] if mine(result)]
    part["errors"] = [
        relocated(error, prefix)
        for error in whole.get("errors") or []
        if mine(error) or not (isinstance(error, dict) and error.get("path"))
    ]
    paths = whole.get("paths")
    if isinstance(paths, dict):
        part["paths"] = {
            kind: [
                entry[len(prefix) :] if isinstance(entry, str) else relocated(entry, prefix)
                for entry in entries
                if (isinstance(entry, str) and entry.startswith(prefix)) or mine(entry)
            ]
            if isinstance(entries, list)
            else entries
            for kind, entries in paths.items()
        }
    return part


class Semgrep(CliTool):
    name = "semgrep"
    program = "semgrep"
    languages = ("Python", "JavaScript", "template", "SQL")
    ok_exit_codes = frozenset({0, 1})
    coalescing = True  # the community engine's rules each look at one file; its report names every file

    def version_argv(self, program: str) -> list[str]:
        return [program, "--version", "--disable-version-check"]  # without the flag it asks the network first

    def command(self, program: str, files: list[str]) -> list[str]:
        return [
            program,
            "scan",
            "--config",
            str(RULES),
            "--metrics=off",
            "--disable-version-check",
            "--json",
            "--quiet",
            "--no-git-ignore",
            "--dataflow-traces",  # where a taint finding's value came from: its source is often the flaw's line
            *as_arguments(files),
        ]

    def parse(self, outcome: ProcessOutcome, source: AppSource) -> list[Finding]:
        report = msgspec.json.decode(outcome.stdout, type=SemgrepReport)
        return [
            source.finding(
                rule_id=rule_name(result.check_id),
                severity=SEVERITY.get(result.extra.severity, "low"),
                message=" ".join(result.extra.message.split()),
                path=result.path,
                line=result.start.line,
                column=result.start.col,
                end_line=result.end.line,
                category="security",
                cwe=result.extra.metadata.get("cwe"),
                extra={"flow_lines": lines} if (lines := flow_lines(result.extra.dataflow_trace)) else None,
            )
            for result in report.results
        ]

    def split(self, report: str, prefixes: list[str]) -> dict[str, str]:
        """For each prefix, the results, errors and scanned paths of a combined report that lie under it, each
        `path` in them (a result's, an error's, a taint trace's locations) relative to it; errors about no file (a
        rule's) belong to every app, as each app's own run reports them too. The report is decoded once."""
        whole = msgspec.json.decode(report)
        if not isinstance(whole, dict) or not isinstance(whole.get("results"), list):
            raise ValueError("not a semgrep report")
        return {prefix: msgspec.json.encode(_part(whole, prefix)).decode() for prefix in prefixes}

    def gaps(self, outcome: ProcessOutcome) -> str | None:
        """semgrep exits 0 with rules that timed out or files it could not parse listed in its report's `errors`:
        the run is then partial, and the reason names what was left out."""
        errors = msgspec.json.decode(outcome.stdout, type=SemgrepReport).errors
        if not errors:
            return None
        listed = "; ".join(describe(error) for error in errors[:GAPS_LISTED])
        more = f" and {len(errors) - GAPS_LISTED} more" if len(errors) > GAPS_LISTED else ""
        return f"semgrep left out part of the scan ({len(errors)} errors: {listed}{more}); the other findings stand"
