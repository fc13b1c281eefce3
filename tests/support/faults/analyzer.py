"""The fault suite's static analyzer: the benchmark's no-op analyzer (the real analyzer base, one tool answering to
`ruff` with 5 fixed findings), each run held for a moment so that a fault lands on runs in flight.

A task of the model `slow` runs for SLOW_RUN_S (heartbeats keep it alive): the one request a crash loop kills the
orchestrator under is such a task, so each kill comes while it runs.

Run: `python -m tests.support.faults.analyzer --port P`.
"""

from __future__ import annotations

import asyncio

from benchmarks.noop_analyzer import SERVICE, NoopTool
from services.analyzers.base.analyzer import Analyzer
from services.analyzers.base.job import Job
from services.analyzers.base.main import run_analyzer
from services.analyzers.base.tool import ToolOutput

RUN_S = 0.2
SLOW_MODEL = "slow"
SLOW_RUN_S = 600.0


class PacedTool(NoopTool):
    """The no-op tool, taking RUN_S per run (SLOW_RUN_S for the model `slow`)."""

    async def run(self, job: Job) -> ToolOutput:
        await asyncio.sleep(SLOW_RUN_S if job.task.model_slug == SLOW_MODEL else RUN_S)
        return await super().run(job)


if __name__ == "__main__":
    run_analyzer(Analyzer(service=SERVICE, tools=[PacedTool()], needs_source=False))
