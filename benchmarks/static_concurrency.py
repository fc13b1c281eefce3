"""Static analysis concurrency: wall time of a full static analysis of a sample app, in-process.

Assay's figure runs every static tool through the analyzer's own machinery (`build_analyzer`, `Job`,
`run_tools`) with the default tool concurrency (`ASSAY_TOOL_CONCURRENCY`, the CPU count). The baseline is the
same run with concurrency 1, i.e. the tools one after another, as a sequential analyzer would run them. Each run
analyzes a fresh copy of the sample app (no tool cache carries over), baseline and Assay runs alternate, and the
wall time is the median of two runs each. The per-tool rows are the tool process durations of each side's last
run: with tools sharing the CPUs, single tools may take longer while the whole analysis takes less.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from textwrap import shorten

from benchmarks.common import Row
from services.analyzers.base.cpu_budget import CpuBudget
from services.analyzers.base.job import Job
from services.analyzers.base.runner import run_tools
from services.analyzers.static.analyzer import build_analyzer
from shared.operations.config import load_settings
from shared.results.findings import ToolRun
from shared.wire.protocol import ServiceResult
from shared.wire.tasks import TaskRef

REPO = Path(__file__).resolve().parent.parent
MODEL, NUMBER = "openai_codex-mini", 1
SAMPLE = REPO / "generated" / "apps" / MODEL / f"app{NUMBER}"
RUNS = 2
DEADLINE_S = 300.0


async def _quiet(_tool: str, _stage: str, _message: str) -> None:
    return None


async def analyze(app_dir: Path, concurrency: int) -> ServiceResult:
    """Every static tool on `app_dir`, as the analyzer server runs them, with `concurrency` tool slots."""
    settings = load_settings({"ASSAY_TOOL_CONCURRENCY": str(concurrency)})
    job = Job(
        request_id="bench-static",
        task=TaskRef(id="task_00000000bec4", model_slug=MODEL, app_number=NUMBER, analysis_type="static"),
        app_dir=app_dir,
        target_urls=[],
        options={},
        deadline=time.monotonic() + DEADLINE_S,
        settings=settings,
        cpu_budget=CpuBudget(settings.tool_concurrency),
        report=_quiet,
    )
    return await run_tools("static", build_analyzer().tools, job)


def _timed_run(folder: Path, label: str, concurrency: int) -> tuple[float, ServiceResult]:
    app_dir = folder / label / MODEL / f"app{NUMBER}"
    shutil.copytree(SAMPLE, app_dir)
    started = time.perf_counter()
    result = asyncio.run(analyze(app_dir, concurrency))
    return time.perf_counter() - started, result


def _note(base: ToolRun, assay: ToolRun | None) -> str:
    """Empty when the tool succeeded on both sides; otherwise what happened to it."""
    if assay is None or (base.status, assay.status) == ("success", "success"):
        return "" if assay else "not run by Assay"
    if base.status == assay.status == "skipped":
        return shorten(f"skipped: {base.reason or ''}", 70, placeholder=" …")
    return f"{base.status} / {assay.status}"


def run() -> list[Row]:
    default = load_settings({}).tool_concurrency
    walls: dict[int, list[float]] = {1: [], default: []}
    last: dict[int, ServiceResult] = {}
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as tmp:
        for attempt in range(RUNS):
            for concurrency in walls:
                wall, last[concurrency] = _timed_run(Path(tmp), f"c{concurrency}-{attempt}", concurrency)
                walls[concurrency].append(wall)
    base, assay = last[1], last[default]
    note = f"{len(base.findings)} / {len(assay.findings)} findings; median of {RUNS}"
    rows = [
        Row(
            f"full analysis, concurrency 1 vs {default}",
            "s",
            statistics.median(walls[1]),
            statistics.median(walls[default]),
            note=note,
        )
    ]
    assay_runs = {run.tool: run for run in assay.tools}
    for base_run in base.tools:
        assay_run = assay_runs.get(base_run.tool)
        ran = base_run.status != "skipped" and assay_run is not None and assay_run.status != "skipped"
        rows.append(
            Row(
                f"  {base_run.tool}",
                "s",
                base_run.duration_s if ran else None,
                assay_run.duration_s if ran and assay_run else None,
                note=_note(base_run, assay_run),
            )
        )
    return rows
