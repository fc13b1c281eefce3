"""eslint: JavaScript problems in the app's frontend, with Assay's own flat config (no-eval, eqeqeq, no-undef …).

eslint is installed project-locally (services/analyzers/static/node, `make install` when Node.js is present);
the app's own eslint configs are never looked up, so an app cannot switch rules off or load plugins.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec

from services.analyzers.static.tools.cli_tool import CliTool
from services.analyzers.static.tools.source import AppSource, as_arguments
from shared.operations.process import ProcessOutcome
from shared.results.findings import Finding, Severity

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
CONFIG = NODE_DIR / "eslint.config.mjs"
SEVERITY: dict[int, Severity] = {2: "medium", 1: "low"}


class EslintMessage(msgspec.Struct):
    message: str
    severity: int = 1
    rule_id: str | None = msgspec.field(default=None, name="ruleId")
    line: int | None = None
    column: int | None = None
    end_line: int | None = msgspec.field(default=None, name="endLine")
    fatal: bool = False


class EslintFile(msgspec.Struct):
    path: str = msgspec.field(name="filePath")
    messages: list[EslintMessage]


class Eslint(CliTool):
    name = "eslint"
    program = str(NODE_DIR / "node_modules" / ".bin" / "eslint")
    missing_hint = "needs Node.js; run make install"
    languages = ("JavaScript",)
    ok_exit_codes = frozenset({0, 1})  # 2: a configuration or internal error

    def locate(self) -> str | None:
        # the .bin script starts with `#!/usr/bin/env node`: without node on PATH it cannot run
        found = super().locate()
        return found if found and shutil.which("node") else None

    def command(self, program: str, files: list[str]) -> list[str]:
        return [
            program,
            "--format",
            "json",
            "--config",
            str(CONFIG),
            "--no-error-on-unmatched-pattern",
            *as_arguments(files),
        ]

    def parse(self, outcome: ProcessOutcome, source: AppSource) -> list[Finding]:
        files = msgspec.json.decode(outcome.stdout, type=list[EslintFile])
        return [
            source.finding(
                rule_id=message.rule_id or "parse-error",
                severity="high" if message.fatal else SEVERITY.get(message.severity, "low"),
                message=message.message,
                path=file.path,
                line=message.line,
                column=message.column,
                end_line=message.end_line,
                category="quality",  # the rule table (shared/results/rule_table.py) names eslint's security rules
                help_url=f"https://eslint.org/docs/latest/rules/{message.rule_id}"
                if message.rule_id
                else None,
            )
            for file in files
            for message in file.messages
        ]
