"""mypy: type errors in Python code, with the app's dependencies when the orchestrator prepared its virtualenv.

mypy finds installed packages in the folders its `--python-executable` names when run as
`<executable> <mypy>/pyinfo.py getsearchdirs` (it prints `(sys_path, site_packages)`). The app's own interpreter
must never run here, so the executable handed to mypy is Assay's: a shell script that only prints the app's
site-packages (search_folders_answer). Those folders are mypy's "installed packages": their modules are followed
silently (PEP 561: typed ones for their types, an errors inside them never reported), unlike MYPYPATH, whose
modules would count as the app's own code and have their errors reported.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import msgspec

from services.analyzers.base.job import Job
from services.analyzers.static.tools.app_env import ToolEnvironment
from services.analyzers.static.tools.cli_tool import CliTool, UnreadableOutput, tail
from services.analyzers.static.tools.source import AppSource, as_arguments, unresolved_imports
from shared.operations.config import Settings
from shared.operations.process import ProcessOutcome
from shared.results.findings import Finding, Severity
from shared.store.atomic_file import write_atomically

JSON_OUTPUT_SINCE = (
    1,
    11,
)  # `--output json` arrived in mypy 1.11; older ones are read from their text output
# `path:line:column: severity: message  [code]` (the text form, with --show-column-numbers)
TEXT_LINE = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>-?\d+):(?:(?P<column>-?\d+):)? (?P<severity>error|note|warning): "
    r"(?P<message>.*?)(?:  \[(?P<code>[\w-]+)\])?$"
)


# Imports mypy cannot resolve where it runs (with --ignore-missing-imports it rarely says so): one note for all.
UNRESOLVED = frozenset({"import-not-found", "import-untyped"})
_MODULE = re.compile(r'(?:module named|module|stubs for) "([^"]+)"')
_MODULE_HINT = re.compile(
    r"mypy\.readthedocs\.io/.*running-mypy\.html#missing-imports|python3 -m pip install types-"
)

_MEMORY_ERROR = re.compile(r"^MemoryError$", re.MULTILINE)  # a traceback's last line, never a message's


def _module(message: str) -> str:
    match = _MODULE.search(message)
    return match.group(1) if match else message


class MypyMessage(msgspec.Struct):
    file: str
    line: int
    message: str
    severity: str
    column: int | None = None
    end_line: int | None = None
    code: str | None = None
    hint: str | None = None


def _version_tuple(version: str | None) -> tuple[int, ...]:
    return tuple(int(part) for part in (version or "0").split(".")[:2])


def _severity(message: MypyMessage) -> Severity:
    if message.severity == "note":
        return "info"
    # a syntax error stops mypy checking anything else
    return "high" if message.code == "syntax" else "medium"


class Mypy(CliTool):
    name = "mypy"
    program = "mypy"
    # 2: a blocking error (syntax error, duplicate module); parse decides
    ok_exit_codes = frozenset({0, 1, 2})
    uses_environment = True

    def json_output(self, program: str) -> bool:
        return _version_tuple(self._versions.get(program)) >= JSON_OUTPUT_SINCE

    def command(self, program: str, files: list[str]) -> list[str]:
        # --config-file= (empty): no app config, so no plugin of the app's is ever imported here
        # --sqlite-cache: mypy's cache (--cache-dir, see local_command) keeps the standard library's and the installed
        # packages' analysis between apps, and SQLite lets concurrent runs share it; mypy checks what changed
        # --show-traceback: a crash ends with its exception's name (a MemoryError at ASSAY_TOOL_MEMORY_MB)
        common = [program, "--config-file=", "--ignore-missing-imports", "--sqlite-cache", "--show-traceback"]
        if self.json_output(program):
            return [*common, "--output", "json", *as_arguments(files)]
        return [
            *common,
            "--show-column-numbers",
            "--no-error-summary",
            "--no-color-output",
            *as_arguments(files),
        ]

    def environment(self, job: Job) -> ToolEnvironment | None:
        """The checked environment, with its search-folders answer written for mypy to ask."""
        environment = super().environment(job)
        if environment is not None and environment.site_packages is not None:
            write_answer(answer_path(environment, job.settings), environment.site_packages)
        return environment

    def environment_arguments(self, environment: ToolEnvironment, settings: Settings) -> list[str]:
        return [f"--python-executable={answer_path(environment, settings)}"]

    def local_command(self, command: list[str], settings: Settings) -> list[str]:
        """The cache under ASSAY_TOOL_CACHE_DIR, never in the app folder."""
        return [command[0], f"--cache-dir={settings.tool_cache_dir / 'mypy'}", *command[1:]]

    def ran_out_of_memory(self, outcome: ProcessOutcome) -> bool:
        # mypy catches a MemoryError as an internal error (exit 2); its traceback's last line names it
        return super().ran_out_of_memory(outcome) or bool(
            outcome.exit_code == 2 and _MEMORY_ERROR.search(outcome.stdout)
        )

    def messages(self, outcome: ProcessOutcome) -> list[MypyMessage]:
        """What mypy printed, from its JSON or its text form."""
        if self.json_output(outcome.argv[0]):
            return [
                msgspec.json.decode(line, type=MypyMessage)
                for line in outcome.stdout.splitlines()
                if line.strip()
            ]
        return [_from_text(match) for line in outcome.stdout.splitlines() if (match := TEXT_LINE.match(line))]

    def blocked_by_environment(
        self, outcome: ProcessOutcome, app_dir: Path, environment: ToolEnvironment
    ) -> str | None:
        """A blocking error (exit 2: a syntax error, say) in an installed package stops mypy before it checks the
        app: when every error lies outside the app, the run is made again without the environment."""
        if outcome.exit_code != 2:
            return None
        try:
            errors = [message for message in self.messages(outcome) if message.severity == "error"]
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        source = AppSource(app_dir, self.name)
        if not errors or any(source.holds(message.file) for message in errors):
            return None
        site = str(environment.site_packages)
        files = sorted({os.path.relpath(m.file, site) if m.file.startswith(site) else m.file for m in errors})
        shown = ", ".join(name[:120] for name in files[:3]) + (
            f" and {len(files) - 3} more" if len(files) > 3 else ""
        )
        return f"mypy stopped at errors in the environment's own files ({shown}), and ran again without it"

    def parse(self, outcome: ProcessOutcome, source: AppSource) -> list[Finding]:
        messages = self.messages(outcome)
        if outcome.exit_code == 2 and not messages:  # a crash or a usage error: nothing was checked
            raise UnreadableOutput(f"mypy stopped: {tail(outcome.stderr or outcome.stdout)}")
        # what mypy says about a file outside the app (an installed package's) is never the app's finding
        messages = [message for message in messages if source.holds(message.file)]
        unresolved = [_module(message.message) for message in messages if message.code in UNRESOLVED]
        return unresolved_imports(source, unresolved) + [
            source.finding(
                rule_id=message.code or ("note" if message.severity == "note" else "misc"),
                severity=_severity(message),
                message=f"{message.message} ({message.hint})" if message.hint else message.message,
                path=message.file,
                line=message.line if message.line > 0 else None,
                column=message.column + 1 if message.column is not None and message.column >= 0 else None,
                end_line=message.end_line if message.end_line and message.end_line > 0 else None,
                category="type",
            )
            for message in messages
            if message.code not in UNRESOLVED
            and not (message.severity == "note" and _MODULE_HINT.search(message.message))
        ]


def _from_text(match: re.Match[str]) -> MypyMessage:
    column = match["column"]
    return MypyMessage(
        file=match["file"],
        line=int(match["line"]),
        # the text form counts columns from 1, the JSON form from 0: store the JSON convention
        column=int(column) - 1 if column else None,
        message=match["message"],
        severity=match["severity"],
        code=match["code"],
    )


def answer_path(environment: ToolEnvironment, settings: Settings) -> Path:
    """Where the search-folders answer of one environment is kept (beside mypy's cache, by its identity)."""
    return settings.tool_cache_dir / "mypy-environments" / f"{environment.name}-{environment.identity[:16]}"


def write_answer(path: Path, site_packages: Path) -> None:
    """An executable that prints what mypy's pyinfo.py would print for an interpreter whose only installed packages
    are in `site-packages` (and nothing else, whatever its arguments): written once, atomically."""
    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    answer = repr(([], [str(site_packages)]))
    script = (
        f"#!/bin/sh\n# mypy's search folders for the app's environment (Assay)\ncat <<'EOF'\n{answer}\nEOF\n"
    )
    # a temporary file of its own for each writer (pylint's and mypy's runs of one analysis, other analyses' threads)
    write_atomically(path, script.encode(), mode=0o755)
