"""The reference floor of a study: the same tool commands Assay's tools build, run app by app and tool by tool, one
process after another, as a shell loop would. Each process is reaped with wait4, so its CPU time (user + system,
with the helpers it waited for) is the kernel's count; the floor is their sum divided by the cores, the wall time
no scheduler could beat with that work. Each output is read by the tool's own parser, so the floor's findings can
be set beside Assay's, app by app, tool by tool and rule by rule.

Tools that would be skipped in Assay (not installed, nothing to analyze, advisory database unreachable) are
skipped here too; so is npm-audit, which is no single command (and only runs online).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from services.analyzers.base.tool import SkipTool, Tool
from services.analyzers.static.analyzer import build_analyzer
from services.analyzers.static.tools.cli_tool import CliTool
from shared.operations.config import load_settings
from shared.operations.process import ProcessOutcome
from shared.results.findings import Finding
from shared.wire.catalog import SECURITY_TOOLS

TOOL_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class FloorRun:
    app: str
    tool: str
    cpu_s: float
    wall_s: float
    status: str
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class Floor:
    runs: list[FloorRun]
    cores: int

    @property
    def processes(self) -> int:
        return len(self.runs)

    @property
    def cpu_s(self) -> float:
        return sum(run.cpu_s for run in self.runs)

    @property
    def floor_s(self) -> float:
        """The reference floor: the loop's CPU seconds spread over every core."""
        return self.cpu_s / self.cores

    def cpu_by_tool(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for run in self.runs:
            totals[run.tool] = totals.get(run.tool, 0.0) + run.cpu_s
        return totals

    def findings(self) -> Counter[tuple[str, str, str]]:
        """(app, tool, rule) → how many findings the loop's outputs hold."""
        return Counter((run.app, f.tool, f.rule_id) for run in self.runs for f in run.findings)


def study_tools(analysis_type: str) -> list[CliTool]:
    """The static analyzer's tools an analysis type runs, as Assay's catalog chooses them."""
    tools: list[Tool] = build_analyzer().tools
    if analysis_type == "security":
        tools = [tool for tool in tools if tool.name in SECURITY_TOOLS]
    # one command per app (npm-audit runs its own steps in a scratch copy, and only online: it is left out)
    return [tool for tool in tools if isinstance(tool, CliTool) and type(tool).run is CliTool.run]


def run_measured(
    argv: list[str], cwd: Path, timeout_s: float = TOOL_TIMEOUT_S
) -> tuple[ProcessOutcome, float]:
    """Run `argv` in `cwd` to its end; its outcome and CPU seconds (user + system, with its reaped children)."""
    started = time.monotonic()
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None and process.stderr is not None
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(process.stderr.read()))  # type: ignore[union-attr]
    killer = threading.Timer(timeout_s, lambda: os.killpg(process.pid, signal.SIGKILL))
    reader.start()
    killer.start()
    output = process.stdout.read()
    reader.join()
    _pid, status, usage = os.wait4(process.pid, 0)
    killer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    outcome = ProcessOutcome(
        argv=argv,
        exit_code=process.returncode,
        stdout=output.decode(errors="replace"),
        stderr=b"".join(errors).decode(errors="replace"),
        duration_s=round(time.monotonic() - started, 3),
    )
    return outcome, usage.ru_utime + usage.ru_stime


async def measure_floor(
    apps: list[tuple[str, Path]], analysis_type: str, only: frozenset[str] | None = None
) -> Floor:
    """Every tool of `analysis_type` (or those of it named in `only`) over every app of `apps` ((name, folder)),
    one process at a time."""
    settings = load_settings()
    tools = [tool for tool in study_tools(analysis_type) if only is None or tool.name in only]
    runs: list[FloorRun] = []
    for name, folder in apps:
        for tool in tools:
            try:
                program, version = await tool.ready(settings)
                files = tool.targets(folder)
                await tool.check_advisory_host(settings)
            except SkipTool:
                continue
            argv = tool.command(program, files)
            outcome, cpu_s = await asyncio.to_thread(run_measured, argv, folder)
            output = await tool.output(outcome, folder, version=version, files_analyzed=len(files))
            runs.append(
                FloorRun(name, tool.name, cpu_s, outcome.duration_s, output.run.status, output.findings)
            )
    return Floor(runs=runs, cores=os.cpu_count() or 1)
