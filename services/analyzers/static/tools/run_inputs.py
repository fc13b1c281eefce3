"""What a static tool's output depends on, as reuse keys, and the reuse store as a tool run uses it.

The inputs of one run: the tool's name and version; its argument list without the files (its configuration)
and the content of every file or folder that list names (rule files and folders, configs); Assay's own code that turns the output into
findings (a changed parser must not hand back findings it would no longer produce); and the path and content of
every app file the tool analyzes. The app folder itself is no input: tools run in it with relative paths, so two
copies of an app with the same files share their keys.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from pathlib import Path

import msgspec

from services.analyzers.base.reuse import ReuseStore, StoredRun, digest, file_digest
from services.analyzers.base.tool import ToolOutput
from shared.results.findings import Finding

KEY_FORMAT = "assay-reuse-1"  # changed when what a key covers changes
# The code that checks the app's environment and guards pylint's imports from it: a tool that reads the environment
# depends on it (a changed guard or check must not hand back runs made under the old one).
ENVIRONMENT_MODULES = ("app_env", "import_guard", "memory_limit")


class RunInputs(msgspec.Struct, frozen=True, kw_only=True):
    """The reuse keys of one run: one for the whole run, and one per analyzed file."""

    whole: str
    per_file: dict[str, str]  # relative path → key


def code_files(tool: object) -> list[Path]:
    """The source files of the modules that define `tool`'s class and its bases, of the finding model, and (for a
    tool that reads the app's environment) of the code that checks and guards it."""
    modules = {cls.__module__ for cls in type(tool).__mro__ if cls.__module__.startswith("services.")}
    modules |= {"services.analyzers.static.tools.source", "shared.results.findings"}
    if getattr(tool, "uses_environment", False):
        modules |= {f"services.analyzers.static.tools.{name}" for name in ENVIRONMENT_MODULES}
    return sorted(Path(inspect.getfile(importlib.import_module(name))) for name in modules)


def code_digest(tool: object) -> str:
    """Hash of the source of `tool`'s code_files."""
    return digest(*(file_digest(file) for file in code_files(tool)))


def named_contents(path: Path) -> list[str]:
    """What a path on a tool's command line holds: a file's content hash, or a folder's files (a rule folder), each
    with its relative path; nothing for anything else (`/dev/null`)."""
    if path.is_file():
        return [file_digest(path)]
    if path.is_dir():
        files = sorted(item for item in path.rglob("*") if item.is_file())
        return [part for item in files for part in (item.relative_to(path).as_posix(), file_digest(item))]
    return []


def run_inputs(
    *, tool: str, version: str | None, code: str, configuration: list[str], app_dir: Path, files: list[str]
) -> RunInputs:
    """The keys of a run of `tool` with `configuration` (argv without the program and the files) over `files`."""
    named = [part for arg in configuration if arg.startswith("/") for part in named_contents(Path(arg))]
    base = digest(KEY_FORMAT, tool, version or "", code, *configuration, *named)
    contents = {path: file_digest(app_dir / path) for path in files}
    return RunInputs(
        whole=digest(base, *(part for path in files for part in (path, contents[path]))),
        per_file={path: digest(base, path, contents[path]) for path in files},
    )


class StoredRuns:
    """The reuse store (services/analyzers/base/reuse.py) as one task's tools use it, off the event loop."""

    def __init__(self, store: ReuseStore, task_id: str, *, fresh: bool = False) -> None:
        self.store = store
        self.task_id = task_id
        self.fresh = fresh  # read nothing: every run is made again, and stored in place of the old one

    async def get(self, key: str) -> StoredRun | None:
        return None if self.fresh else await asyncio.to_thread(self.store.get, key)

    async def keep(self, key: str, output: ToolOutput, findings: list[Finding], *, raw: bool = True) -> None:
        """Store `findings` of a successful `output` under `key`, or an advisory database's "cannot say" (a `skipped`
        output: only those tools' parsers skip); a failed or timed-out run is never reused."""
        if output.run.status not in ("success", "skipped"):
            return
        stored = StoredRun(
            task_id=self.task_id,
            command=output.run.command,
            exit_code=output.run.exit_code,
            duration_s=output.run.duration_s,
            findings=findings,
            raw_output=output.raw_output if raw else "",
            status=output.run.status,
            reason=output.run.reason,
        )
        await asyncio.to_thread(self.store.put, key, stored)
