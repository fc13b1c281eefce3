"""The one interface every analysis tool implements, and what a tool hands back."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Protocol

import msgspec

from services.analyzers.base.job import Job
from shared.operations.config import Settings
from shared.operations.errors import ToolError
from shared.results.findings import Finding, ToolRun
from shared.wire.protocol import ToolHealth


class ToolOutput(msgspec.Struct, kw_only=True):
    """A tool's record, its normalized findings, its raw output and any measurements."""

    run: ToolRun
    findings: list[Finding] = []
    raw_output: str = ""
    metrics: dict[str, Any] = {}


class Tool(Protocol):
    """An analysis tool. `health` says whether it can run here, with these settings (and its version); `run`
    analyzes one job."""

    name: str

    async def health(self, settings: Settings) -> ToolHealth: ...

    async def run(self, job: Job) -> ToolOutput: ...


class SkipTool(ToolError):
    """Raised by a tool that has nothing to analyze or cannot run for this job; the reason is reported."""


def executable(name: str) -> str | None:
    """A tool's executable: the one installed beside this interpreter (the project's venv) first, then PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    return shutil.which(name)
