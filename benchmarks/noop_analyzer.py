"""The no-op analyzer of the pipeline benchmark: the real analyzer base (protocol v1, heartbeats, result shape)
serving one tool that runs nothing and reports 5 fixed findings.

It serves as the `static` analyzer and its tool answers to the catalog name `ruff`, so the gateway and the
orchestrator validate and plan a benchmark request (`analysis_type: static, tools: [ruff]`) like any other.
The Celery baseline builds its result with the same tool and `run_tools`, so both systems persist the same data.

Run: `python -m benchmarks.noop_analyzer --port P`.
"""

from __future__ import annotations

import time

from benchmarks.common import sample_findings
from services.analyzers.base.analyzer import Analyzer
from services.analyzers.base.cpu_budget import CpuBudget
from services.analyzers.base.job import Job
from services.analyzers.base.main import run_analyzer
from services.analyzers.base.runner import run_tools
from services.analyzers.base.tool import ToolOutput
from shared.operations.config import Settings
from shared.results.findings import ToolRun
from shared.wire.messages import AnalysisRequest
from shared.wire.protocol import ServiceResult, ToolHealth

SERVICE = "static"
TOOL = "ruff"
FINDINGS = 5
VERSION = "noop"


class NoopTool:
    """A tool that reports the same 5 findings for every job, without running a process."""

    name = TOOL

    async def health(self, settings: Settings) -> ToolHealth:
        del settings
        return ToolHealth(name=TOOL, available=True, version=VERSION)

    async def run(self, job: Job) -> ToolOutput:
        findings = sample_findings(FINDINGS)
        run = ToolRun(
            tool=TOOL,
            status="success",
            version=VERSION,
            command=["true"],
            exit_code=0,
            duration_s=0.0,
            files_analyzed=0,
            findings_count=len(findings),
        )
        return ToolOutput(run=run, findings=findings)


def build_analyzer() -> Analyzer:
    """The no-op analyzer; it reads no source, so any app (even one without files) is accepted."""
    return Analyzer(service=SERVICE, tools=[NoopTool()], needs_source=False)


async def _quiet(_tool: str, _stage: str, _message: str) -> None:
    return None


async def noop_result(request: AnalysisRequest, settings: Settings) -> ServiceResult:
    """The result the no-op analyzer sends for `request`, built by the same `run_tools` (for the Celery side)."""
    job = Job(
        request_id=request.task.id,
        task=request.task,
        app_dir=None,
        target_urls=[],
        options={},
        deadline=time.monotonic() + request.deadline_s,
        settings=settings,
        cpu_budget=CpuBudget(1),
        report=_quiet,
    )
    return await run_tools(SERVICE, [NoopTool()], job)


if __name__ == "__main__":
    run_analyzer(build_analyzer())
