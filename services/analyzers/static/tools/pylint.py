"""pylint: Python errors, warnings, refactoring hints and conventions."""

from __future__ import annotations

import re

import msgspec

from services.analyzers.static.tools import import_guard
from services.analyzers.static.tools.app_env import ToolEnvironment
from services.analyzers.static.tools.cli_tool import CliTool
from services.analyzers.static.tools.source import AppSource, as_arguments, unresolved_imports
from services.analyzers.static.tools.warm_tool import WarmTool
from shared.operations.config import Settings
from shared.operations.process import ProcessOutcome
from shared.results.findings import Finding, Severity

SEVERITY: dict[str, Severity] = {
    "fatal": "high",
    "error": "high",
    "warning": "medium",
    "refactor": "low",
    "convention": "info",
    "info": "info",
}


WARM_SERVER = WarmTool("pylint")
# An import pylint cannot find where it runs is the environment's gap, not the app's flaw: one note for them all.
UNRESOLVED = frozenset({"import-error"})
_MODULE = re.compile(r"Unable to import '([^']+)'")
# astroid turns a MemoryError while parsing a module into a syntax error whose cause says nothing ('' is
# MemoryError's text; a real syntax error always says what it is): the sign of a run at its memory limit.
_SILENT_PARSE_FAILURE = re.compile(r'"message": "Cannot import \'[^\']*\' due to \'\'"')


def _module(message: str) -> str:
    match = _MODULE.search(message)
    return match.group(1) if match else message


class PylintMessage(msgspec.Struct):
    type: str
    symbol: str
    message: str
    message_id: str = msgspec.field(name="messageId")
    path: str = ""
    line: int | None = None
    column: int | None = None
    end_line: int | None = msgspec.field(default=None, name="endLine")


class PylintReport(msgspec.Struct):
    messages: list[PylintMessage]


class Pylint(CliTool):
    name = "pylint"
    program = "pylint"
    # pylint's exit code is a bit mask of the message types it emitted; 32 means it could not run at all
    ok_exit_codes = frozenset(range(32))
    warm = WARM_SERVER  # its start-up (imports, astroid building flask and the like) is most of a small app's run
    uses_environment = True

    def command(self, program: str, files: list[str]) -> list[str]:
        # --rcfile=/dev/null: an app's own pylintrc could load plugins or run an init-hook, i.e. run its code here
        return [
            program,
            "--rcfile=/dev/null",
            "--persistent=n",
            "--output-format=json2",
            "--recursive=y",
            "--score=n",
            *as_arguments(files),
        ]

    def environment_arguments(self, environment: ToolEnvironment, settings: Settings) -> list[str]:
        """An init-hook that puts the app's site-packages last on sys.path, read by astroid and never imported
        (import_guard.py); the same in the warm server's child and on the command line."""
        del settings
        hook = f"from {import_guard.__name__} import read_only; read_only({str(environment.site_packages)!r})"
        return [f"--init-hook={hook}"]

    def ran_out_of_memory(self, outcome: ProcessOutcome) -> bool:
        return super().ran_out_of_memory(outcome) or bool(_SILENT_PARSE_FAILURE.search(outcome.stdout))

    def parse(self, outcome: ProcessOutcome, source: AppSource) -> list[Finding]:
        report = msgspec.json.decode(outcome.stdout, type=PylintReport)
        unresolved = [_module(message.message) for message in report.messages if message.symbol in UNRESOLVED]
        return unresolved_imports(source, unresolved) + [
            source.finding(
                rule_id=message.symbol,
                severity=SEVERITY.get(message.type, "info"),
                message=f"{message.message} ({message.message_id})",
                path=message.path,
                line=message.line,
                column=None if message.column is None else message.column + 1,
                end_line=message.end_line,
                category="quality",
                extra={"message_id": message.message_id, "type": message.type},
            )
            for message in report.messages
            if message.symbol not in UNRESOLVED
        ]
