"""The fault suite's static analyzer: the benchmark's no-op analyzer (the real analyzer base, one tool answering to
`ruff` with 5 fixed findings), each run held for a moment so that a fault lands on runs in flight.

A task of the model `slow` runs for SLOW_RUN_S (heartbeats keep it alive): the one request a crash loop kills the
orchestrator under is such a task, so each kill comes while it runs. A task of the model `steady` runs for
STEADY_RUN_S: a run of known length, for tests about what happens while runs are in flight (a rolling restart),
where a slow real tool would only make the length unknown.

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
STEADY_MODEL = "steady"
STEADY_RUN_S = 3.0
RUN_S_BY_MODEL = {SLOW_MODEL: SLOW_RUN_S, STEADY_MODEL: STEADY_RUN_S}


class PacedTool(NoopTool):
    """The no-op tool, taking RUN_S per run (the length RUN_S_BY_MODEL gives for the models `slow`, `steady`)."""

    async def run(self, job: Job) -> ToolOutput:
        await asyncio.sleep(RUN_S_BY_MODEL.get(job.task.model_slug, RUN_S))
        return await super().run(job)


if __name__ == "__main__":
    run_analyzer(Analyzer(service=SERVICE, tools=[PacedTool()], needs_source=False))
