"""detect-secrets: credentials committed to the app's files (keys, tokens, passwords, high-entropy strings).

Each result becomes a finding without the secret itself: the message names the kind of secret, never its value.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from services.analyzers.base.tool import SkipTool
from services.analyzers.static.tools.cli_tool import CliTool
from services.analyzers.static.tools.source import AppSource, app_files, as_arguments
from services.analyzers.static.tools.warm_tool import WarmTool
from shared.operations.process import ProcessOutcome
from shared.results.findings import Finding


class SecretHit(msgspec.Struct):
    type: str
    filename: str
    line_number: int | None = None
    is_verified: bool = False


class SecretsReport(msgspec.Struct):
    results: dict[str, list[SecretHit]]


class DetectSecrets(CliTool):
    name = "detect-secrets"
    program = "detect-secrets"
    warm = WarmTool("detect-secrets")  # its imports and plugin loading are most of a small app's run
    ok_exit_codes = frozenset({0})

    def targets(self, app_dir: Path) -> list[str]:
        files = app_files(app_dir)  # every file: secrets hide in .env, JSON and HTML as often as in code
        if not files:
            raise SkipTool("no files")
        return files

    def command(self, program: str, files: list[str]) -> list[str]:
        return [program, "scan", "--all-files", *as_arguments(files)]

    def parse(self, outcome: ProcessOutcome, source: AppSource) -> list[Finding]:
        report = msgspec.json.decode(outcome.stdout, type=SecretsReport)
        return [
            source.finding(
                rule_id=hit.type,
                severity="high",
                message=f"Possible secret ({hit.type}) committed in the source; move it to the environment",
                path=hit.filename,
                line=hit.line_number,
                category="secrets",
                cwe="CWE-798",
                extra={"verified": hit.is_verified},
            )
            for hits in report.results.values()
            for hit in hits
        ]
