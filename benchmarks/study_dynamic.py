"""The `dynamic` type of the study: N apps Assay starts in its sandbox and probes, as one batch, beside the same
analysis run app by app.

The reference: app after app, the app runner starts the app in its sandbox (as the orchestrator does: prepared,
started, its marker listener answering), the dynamic analyzer runs the same tools against it, the app is stopped;
its wall is the sum of those runs, start and stop included: what a shell loop over the apps would take. Assay: the
batch's wall (first accept → last persisted) through the real gateway, orchestrator (which starts the apps,
ASSAY_APP_CONCURRENCY at once), dynamic analyzer and persister. Where the time goes, from the reference's runs: app
start (prepare and start, to the first probe), checks (the analyzer's run) and stop; during the batch, the wall's
core-seconds (benchmarks/wall_parts.py): Assay's CPU by role, the apps' and their preparation's in the sandboxes,
other work on the machine and the cores' idle time. The apps share one requirements set, so their environment is built once, untimed, before
both. Needs bubblewrap (the sandbox): without it the row says so and nothing runs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from benchmarks.assay_system import AssaySystem
from benchmarks.common import Row
from benchmarks.study_apps import STUDY_MODEL
from benchmarks.wall_parts import describe
from services.orchestrator.apps.sandbox import bwrap_path
from shared.store.database import create_engine
from shared.store.models import FindingRow
from shared.wire.catalog import TOOLS_BY_SERVICE
from shared.wire.protocol import ServiceResult
from tests.support.analyzers import result_async, start_analyzer, stop
from tests.support.apps import runner_settings
from tests.support.corpus import frame, with_running

TOOLS = list(TOOLS_BY_SERVICE["dynamic"])
# (system, analysis type, apps, tools) → wall, task ids, CPU per role, idle core-seconds (study.py's batch runner)
RunStudy = Callable[
    [AssaySystem, str, int, list[str]], Awaitable[tuple[float, list[str], dict[str, float], float]]
]


@dataclass(frozen=True)
class ReferenceRun:
    """One app of the reference: seconds from the start of its preparation to the first probe, of the checks, and
    of its stop; and the analyzer's result."""

    start_s: float
    checks_s: float
    stop_s: float
    result: ServiceResult


@dataclass(frozen=True)
class Batch:
    """A study's batch through Assay: its wall (first accept → last persisted), tasks, CPU seconds by role (the
    sandboxes' among them), the cores' idle seconds, the findings it persisted and the database they are in."""

    wall_s: float
    task_ids: list[str]
    spent: dict[str, float]
    idle_s: float
    findings: int
    database_url: str


async def reference(
    folder: Path, apps_dir: Path, numbers: list[int], tools: list[str], work_dir: Path
) -> list[ReferenceRun]:
    """Each app started, analyzed and stopped, one after another."""
    url, process = start_analyzer("dynamic", folder / "analyzer", apps_dir=apps_dir)
    settings = runner_settings(folder, apps_dir, work_dir)
    runs: list[ReferenceRun] = []
    try:

        async def nothing(_urls: list[str], _ports: dict[str, int]) -> None:
            return None

        await with_running(
            settings, STUDY_MODEL, numbers[0], nothing
        )  # builds the shared environment, untimed
        for number in numbers:
            marks: list[float] = []

            async def checks(
                urls: list[str], ports: dict[str, int], number: int = number, marks: list[float] = marks
            ) -> ServiceResult:
                marks.append(time.monotonic())
                result = await result_async(
                    url, frame(f"reference-{number}", STUDY_MODEL, number, tools, urls, ports), timeout_s=1800
                )
                marks.append(time.monotonic())
                return result

            began = time.monotonic()
            result: ServiceResult = await with_running(settings, STUDY_MODEL, number, checks)
            runs.append(
                ReferenceRun(marks[0] - began, marks[1] - marks[0], time.monotonic() - marks[1], result)
            )
    finally:
        stop(process)
    return runs


async def _assay_findings(database_url: str, task_ids: list[str]) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = select(func.count()).select_from(FindingRow).where(FindingRow.task_id.in_(task_ids))
            return int((await connection.execute(query)).scalar_one())
    finally:
        await engine.dispose()


async def _batch(
    system: AssaySystem, analysis_type: str, n: int, tools: list[str], run_study: RunStudy
) -> Batch:
    """The study's batch through `system`, started here and stopped after."""
    await asyncio.to_thread(system.start)
    try:
        wall, task_ids, spent, idle = await run_study(system, analysis_type, n, tools)
        findings = await _assay_findings(system.database_url, task_ids)
    finally:
        await asyncio.to_thread(system.stop)
    return Batch(wall, task_ids, spent, idle, findings, system.database_url)


async def measure_dynamic(
    root: Path, apps_dir: Path, numbers: list[int], run_study: RunStudy, tools: list[str]
) -> tuple[list[ReferenceRun], Batch]:
    """The reference loop over the apps, then Assay's batch of them (needs bubblewrap)."""
    work_dir = Path(tempfile.mkdtemp(prefix="assay-study-apps-"))  # the sandbox user must reach it
    try:
        runs = await reference(root / "reference", apps_dir, numbers, tools, work_dir)
        system = AssaySystem(
            root / "dynamic",
            apps_dir,
            analyzer_module="services.analyzers.dynamic",
            service="dynamic",
            extra_env={"ASSAY_APP_WORK_DIR": str(work_dir)},
        )
        return runs, await _batch(system, "dynamic", len(numbers), tools, run_study)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


async def dynamic_rows(root: Path, apps_dir: Path, numbers: list[int], run_study: RunStudy) -> list[Row]:
    """The dynamic study's rows: Assay's batch beside the reference loop, and where the time went in each."""
    if bwrap_path() is None:
        return [
            Row(
                f"dynamic: {len(numbers)} apps",
                "s",
                None,
                None,
                note="skipped: bubblewrap (bwrap) is not installed",
            )
        ]
    runs, batch = await measure_dynamic(root, apps_dir, numbers, run_study, TOOLS)
    return dynamic_table(runs, batch)


def dynamic_table(runs: list[ReferenceRun], batch: Batch) -> list[Row]:
    """The rows of a dynamic study's measures."""
    n = len(runs)
    start = sum(run.start_s for run in runs)
    checks = sum(run.checks_s for run in runs)
    stopping = sum(run.stop_s for run in runs)
    reference_findings = sum(len(run.result.findings) for run in runs)
    return [
        Row(
            f"dynamic: {n} apps, reference (app by app, start included) / study wall",
            "s",
            start + checks + stopping,
            batch.wall_s,
            note=f"findings: reference {reference_findings}, Assay {batch.findings} (probes of live apps: "
            "timing-based checks may differ between runs)",
        ),
        Row(
            "dynamic: where the reference's time went (s, summed over apps)",
            "s",
            None,
            None,
            note=f"app start {start:.1f}; checks {checks:.1f}; stop {stopping:.1f}; per app: start "
            f"{start / n:.1f}, checks {checks / n:.1f}",
        ),
        Row(
            "dynamic: where the study's time went",
            "s",
            None,
            None,
            note=describe(batch.wall_s, os.cpu_count() or 1, batch.spent, batch.idle_s),
        ),
    ]


async def measure_comprehensive(
    root: Path, apps_dir: Path, n: int, run_study: RunStudy, tools: list[str]
) -> Batch:
    """A batch of `comprehensive` tasks through Assay with every analyzer (needs bubblewrap)."""
    work_dir = Path(tempfile.mkdtemp(prefix="assay-study-apps-"))
    try:
        system = AssaySystem(
            root / "comprehensive",
            apps_dir,
            analyzer_module="services.analyzers.static",
            extra_env={"ASSAY_APP_WORK_DIR": str(work_dir)},
            other_analyzers=("dynamic", "performance", "ai"),
        )
        return await _batch(system, "comprehensive", n, tools, run_study)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


async def comprehensive_rows(root: Path, apps_dir: Path, n: int, run_study: RunStudy) -> list[Row]:
    """A batch of `comprehensive` tasks (static, dynamic, performance and AI analyzers, the apps started by the
    orchestrator; the catalog's tools): its wall and where it went, which says whether the apps' starts
    and checks leave cores idle while static work waits."""
    if bwrap_path() is None:
        return [Row(f"comprehensive: {n} apps", "s", None, None, note="skipped: bubblewrap is not installed")]
    batch = await measure_comprehensive(root, apps_dir, n, run_study, [])
    return [
        Row(
            f"comprehensive: {n} apps, study wall",
            "s",
            None,
            batch.wall_s,
            note=describe(batch.wall_s, os.cpu_count() or 1, batch.spent, batch.idle_s),
        )
    ]
