"""What a tool gets for one run: the app's source folder, the running app's URLs, options and a deadline."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
from opentelemetry import trace

from services.analyzers.base.cpu_budget import CpuBudget
from services.analyzers.base.reuse import ReuseStore
from shared.operations.config import Settings
from shared.operations.process import ProcessOutcome, run_process
from shared.wire.protocol import PythonEnvironment
from shared.wire.tasks import Priority, TaskRef

tracer = trace.get_tracer("assay.analyzer")

ProgressCallback = Callable[
    [str, str, str], Awaitable[None]
]  # tool, stage, message (the server counts percent)


class Job(msgspec.Struct, kw_only=True):
    """One analyze request as tools see it. `app_dir` is None when the app has no source folder here."""

    request_id: str
    task: TaskRef
    app_dir: Path | None
    app_env: dict[str, str] = {}  # the app's .env (ports of the running app), read once per analysis
    target_urls: list[str]
    options: dict[str, Any]
    deadline: float  # time.monotonic() by which the whole run must end
    settings: Settings
    cpu_budget: CpuBudget  # shared by every run of this analyzer process: its CPU budget
    report: ProgressCallback
    priority: Priority = "normal"  # the request's: how soon its tools get a slot of the CPU budget
    reuse: ReuseStore | None = None  # stored tool runs of this analyzer's host; None: every tool runs afresh
    python_env: PythonEnvironment | None = (
        None  # the app's prepared virtualenv (by name), or why there is none
    )

    def remaining_s(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def tool_timeout_s(self, tool: str) -> float:
        """A tool's timeout: `options.timeouts.<tool>`, else the configured default, never past the deadline."""
        timeouts = self.options.get("timeouts") or {}
        wanted = float(timeouts.get(tool, self.settings.tool_timeout_s))
        return max(0.1, min(wanted, self.remaining_s()))

    def reuse_store(self) -> ReuseStore | None:
        """Where tools keep their runs and look for a stored one with their inputs; None when reuse is off."""
        return self.reuse if self.reuse is not None and self.reuse.enabled else None

    @property
    def fresh(self) -> bool:
        """The request asked for every tool to run again (`options.fresh`): stored runs are replaced, not read."""
        return bool(self.options.get("fresh"))

    def tool_options(self, tool: str) -> dict[str, Any]:
        """Options addressed to one tool: `options.<tool>` (a mapping), empty when absent."""
        value = self.options.get(tool)
        return value if isinstance(value, dict) else {}

    async def run_process(
        self,
        tool: str,
        argv: list[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        cpu_bound: bool = True,
        preexec: Callable[[], None] | None = None,
    ) -> ProcessOutcome:
        """Run one tool subprocess within the analyzer's CPU budget and the tool's timeout. A tool that mostly waits
        on the network (`cpu_bound=False`: an advisory database's client) runs beside the budget, so that its waits
        never leave a core idle while CPU-bound tools queue."""
        # Two child spans of the tool's span: the wait for a CPU slot, then the subprocess itself, so that a tool
        # queued behind others does not look slow.
        timeout_s = self.tool_timeout_s(tool)
        if not cpu_bound:
            with tracer.start_as_current_span(f"exec {tool}", attributes={"assay.tool": tool}):
                return await run_process(
                    argv, cwd=cwd or self.app_dir, timeout_s=timeout_s, env=env, preexec=preexec
                )
        async with self.cpu_slot(tool):
            return await run_process(
                argv, cwd=cwd or self.app_dir, timeout_s=timeout_s, env=env, preexec=preexec
            )

    @asynccontextmanager
    async def cpu_slot(self, tool: str) -> AsyncIterator[None]:
        """Hold one slot of the analyzer's CPU budget while a tool's work runs (a subprocess or a warm run)."""
        attributes = {"assay.tool": tool}
        with tracer.start_as_current_span("cpu slot wait", attributes=attributes):
            await self.cpu_budget.acquire(self.priority)
        try:
            with tracer.start_as_current_span(f"exec {tool}", attributes=attributes):
                yield
        finally:
            self.cpu_budget.release()
