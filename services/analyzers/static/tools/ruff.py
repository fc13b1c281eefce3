"""ruff: Python lint (pyflakes, pycodestyle, bugbear, bandit-style security, pyupgrade, simplify, pylint rules)."""

from __future__ import annotations

import msgspec

from services.analyzers.static.tools.cli_tool import CliTool
from services.analyzers.static.tools.source import AppSource, as_arguments
from shared.operations.process import ProcessOutcome
from shared.results.findings import Finding, Severity
from shared.results.rule_table import is_security

# --isolated: an app's own ruff settings must not change what Assay reports; the rule set is ours.
RULES = "E,F,W,B,S,UP,SIM,C4,PL"
LINE_LENGTH = "120"  # generated code is written wide; 88 would drown everything else in E501


class RuffLocation(msgspec.Struct):
    row: int
    column: int


class RuffDiagnostic(msgspec.Struct):
    code: str | None
    message: str
    filename: str
    location: RuffLocation
    end_location: RuffLocation | None = None
    url: str | None = None
    name: str | None = None


class Ruff(CliTool):
    name = "ruff"
    program = "ruff"
    per_file = True  # every rule of its looks at one file

    def command(self, program: str, files: list[str]) -> list[str]:
        return [
            program,
            "check",
            "--isolated",
            "--no-cache",
            "--output-format",
            "json",
            "--select",
            RULES,
            "--line-length",
            LINE_LENGTH,
            "--target-version",
            "py311",
            *as_arguments(files),
        ]

    def parse(self, outcome: ProcessOutcome, source: AppSource) -> list[Finding]:
        diagnostics = msgspec.json.decode(outcome.stdout, type=list[RuffDiagnostic])
        return [self._finding(item, source) for item in diagnostics]

    def _finding(self, item: RuffDiagnostic, source: AppSource) -> Finding:
        code = item.code or "invalid-syntax"  # older ruff reported unparsable files without a code
        security = is_security(self.name, code, default=False)  # flake8-bandit's S<digits>, never SIM
        if code == "invalid-syntax":
            severity: Severity = "high"  # nothing else in the file could be checked
        else:
            severity = "medium" if security or code.startswith("F") else "low"
        return source.finding(
            rule_id=code,
            severity=severity,
            message=f"{item.message} ({item.name})" if item.name else item.message,
            path=item.filename,
            line=item.location.row,
            column=item.location.column,
            end_line=item.end_location.row if item.end_location else None,
            category="security" if security else "quality",
            help_url=item.url,
        )
