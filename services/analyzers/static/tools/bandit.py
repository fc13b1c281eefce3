"""bandit: security issues in Python code (injection, shell, weak crypto, hard-coded secrets …)."""

from __future__ import annotations

import re

import msgspec

from services.analyzers.static.tools.cli_tool import CliTool
from services.analyzers.static.tools.source import AppSource, as_arguments
from services.analyzers.static.tools.warm_tool import WarmTool
from shared.operations.process import ProcessOutcome
from shared.results.findings import Finding, Severity

SEVERITY: dict[str, Severity] = {"HIGH": "high", "MEDIUM": "medium", "LOW": "low"}
# bandit quotes the literal it suspects of being a password; results are stored and shown, so it is masked
_QUOTED_SECRET = re.compile(r"(Possible hardcoded password: )'.*'$")


def redact(text: str) -> str:
    return _QUOTED_SECRET.sub(r"\1'***'", text)


class BanditCwe(msgspec.Struct):
    id: int = 0


class BanditIssue(msgspec.Struct):
    test_id: str
    issue_severity: str
    issue_confidence: str
    issue_text: str
    filename: str
    line_number: int
    col_offset: int | None = None
    test_name: str = ""
    more_info: str | None = None
    issue_cwe: BanditCwe | None = None


class BanditReport(msgspec.Struct):
    results: list[BanditIssue]


class Bandit(CliTool):
    name = "bandit"
    program = "bandit"
    warm = WarmTool("bandit")  # its imports and plugin loading are most of a small app's run
    per_file = True  # every rule of its looks at one file

    def command(self, program: str, files: list[str]) -> list[str]:
        return [program, "-f", "json", "-q", *as_arguments(files)]

    def parse(self, outcome: ProcessOutcome, source: AppSource) -> list[Finding]:
        report = msgspec.json.decode(outcome.stdout, type=BanditReport)
        return [
            source.finding(
                rule_id=issue.test_id,
                severity=SEVERITY.get(issue.issue_severity, "info"),
                message=f"{redact(issue.issue_text)} ({issue.test_name}, confidence {issue.issue_confidence.lower()})",
                path=issue.filename,
                line=issue.line_number,
                column=None if issue.col_offset is None else issue.col_offset + 1,
                category="security",
                cwe=f"CWE-{issue.issue_cwe.id}" if issue.issue_cwe and issue.issue_cwe.id else None,
                help_url=issue.more_info,
                extra={"confidence": issue.issue_confidence.lower()},
            )
            for issue in report.results
        ]
