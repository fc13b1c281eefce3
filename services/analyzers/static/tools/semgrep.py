"""semgrep: Assay's own rule set (rules/semgrep.yml) over the app's Python and JavaScript, fully offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from services.analyzers.static.tools.cli_tool import CliTool
from services.analyzers.static.tools.source import AppSource, as_arguments
from shared.operations.process import ProcessOutcome
from shared.results.findings import Finding, Severity

RULES = Path(__file__).resolve().parent.parent / "rules" / "semgrep.yml"
SEVERITY: dict[str, Severity] = {"ERROR": "high", "WARNING": "medium", "INFO": "low"}


class SemgrepPosition(msgspec.Struct):
    line: int
    col: int | None = None


class SemgrepExtra(msgspec.Struct):
    message: str
    severity: str
    metadata: dict[str, Any] = {}


class SemgrepResult(msgspec.Struct):
    check_id: str
    path: str
    start: SemgrepPosition
    end: SemgrepPosition
    extra: SemgrepExtra


class SemgrepReport(msgspec.Struct):
    results: list[SemgrepResult]


def rule_name(check_id: str) -> str:
    """semgrep prefixes a local rule's id with the config file's folder (`work.main.….rules.js-eval`)."""
    return check_id.rsplit(".", 1)[-1]


class Semgrep(CliTool):
    name = "semgrep"
    program = "semgrep"
    languages = ("Python", "JavaScript")
    ok_exit_codes = frozenset({0, 1})

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
            )
            for result in report.results
        ]
