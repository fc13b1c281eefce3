"""The `dynamic` type of the study: N apps Assay starts in its sandbox and probes, as one batch, beside the same
analysis run app by app.

The reference: app after app, the app runner starts the app in its sandbox (as the orchestrator does: prepared,
started, its marker listener answering), the dynamic analyzer runs the same tools against it, the app is stopped;
its wall is the sum of those runs, start and stop included: what a shell loop over the apps would take. Assay: the
batch's wall (first accept → last persisted) through the real gateway, orchestrator (which starts the apps,
ASSAY_APP_CONCURRENCY at once), dynamic analyzer and persister. Where the time goes, from the reference's runs: app
start (prepare and start, to the first probe), checks (the analyzer's run) and stop; during the batch, Assay's CPU
and the cores' idle time. The apps share one requirements set, so their environment is built once, untimed, before
both. Needs bubblewrap (the sandbox): without it the row says so and nothing runs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import func, select

from benchmarks.assay_system import AssaySystem
from benchmarks.common import Row
from benchmarks.study_apps import STUDY_MODEL
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


async def reference(
    folder: Path, apps_dir: Path, numbers: list[int], tools: list[str], work_dir: Path
) -> tuple[list[tuple[float, float, float]], int]:
    """Each app started, analyzed and stopped, one after another: (start, checks, stop) seconds per app, and the
    findings of all."""
    url, process = start_analyzer("dynamic", folder / "analyzer", apps_dir=apps_dir)
    settings = runner_settings(folder, apps_dir, work_dir)
    times: list[tuple[float, float, float]] = []
    findings = 0
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
            times.append((marks[0] - began, marks[1] - marks[0], time.monotonic() - marks[1]))
            findings += len(result.findings)
    finally:
        stop(process)
    return times, findings


async def _assay_findings(database_url: str, task_ids: list[str]) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = select(func.count()).select_from(FindingRow).where(FindingRow.task_id.in_(task_ids))
            return int((await connection.execute(query)).scalar_one())
    finally:
        await engine.dispose()


async def dynamic_rows(root: Path, apps_dir: Path, numbers: list[int], run_study: RunStudy) -> list[Row]:
    """The dynamic study's rows: Assay's batch beside the reference loop, and where the reference's time went."""
    n = len(numbers)
    if bwrap_path() is None:
        return [
            Row(f"dynamic: {n} apps", "s", None, None, note="skipped: bubblewrap (bwrap) is not installed")
        ]
    work_dir = Path(tempfile.mkdtemp(prefix="assay-study-apps-"))  # the sandbox user must reach it
    try:
        times, reference_findings = await reference(root / "reference", apps_dir, numbers, TOOLS, work_dir)
        system = AssaySystem(
            root / "dynamic",
            apps_dir,
            analyzer_module="services.analyzers.dynamic",
            service="dynamic",
            extra_env={"ASSAY_APP_WORK_DIR": str(work_dir)},
        )
        await asyncio.to_thread(system.start)
        try:
            wall, task_ids, roles, idle = await run_study(system, "dynamic", n, TOOLS)
            findings = await _assay_findings(system.database_url, task_ids)
        finally:
            await asyncio.to_thread(system.stop)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    looped = sum(sum(run) for run in times)
    start, checks, stopping = (sum(run[part] for run in times) for part in range(3))
    spent = sum(roles.values())
    cores = os.cpu_count() or 1
    return [
        Row(
            f"dynamic: {n} apps, reference (app by app, start included) / study wall",
            "s",
            looped,
            wall,
            note=f"findings: reference {reference_findings}, Assay {findings} (probes of live apps: timing-based "
            "checks may differ between runs)",
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
            "dynamic: where the study's time went (core-s)",
            "s",
            None,
            None,
            note=f"Assay's processes {spent:.0f} (analyzer {roles.get('analyzer', 0.0):.0f}, orchestrator with the "
            f"apps it ran {roles.get('orchestrator', 0.0):.0f}); idle cores {idle:.0f} of {wall * cores:.0f}",
        ),
    ]


async def comprehensive_rows(root: Path, apps_dir: Path, n: int, run_study: RunStudy) -> list[Row]:
    """A batch of `comprehensive` tasks (static, dynamic, performance and AI analyzers, the apps started by the
    orchestrator): its wall, Assay's CPU by role and the cores' idle time, which says whether the apps' starts and
    checks leave cores idle while static work waits."""
    if bwrap_path() is None:
        return [Row(f"comprehensive: {n} apps", "s", None, None, note="skipped: bubblewrap is not installed")]
    work_dir = Path(tempfile.mkdtemp(prefix="assay-study-apps-"))
    try:
        system = AssaySystem(
            root / "comprehensive",
            apps_dir,
            analyzer_module="services.analyzers.static",
            extra_env={"ASSAY_APP_WORK_DIR": str(work_dir)},
            other_analyzers=("dynamic", "performance", "ai"),
        )
        await asyncio.to_thread(system.start)
        try:
            wall, _task_ids, roles, idle = await run_study(system, "comprehensive", n, [])
        finally:
            await asyncio.to_thread(system.stop)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    cores = os.cpu_count() or 1
    spent = sum(roles.values())
    return [
        Row(
            f"comprehensive: {n} apps, study wall",
            "s",
            None,
            wall,
            note=f"core-s of the wall ({wall * cores:.0f}): Assay {spent:.0f} ("
            + ", ".join(f"{role} {value:.0f}" for role, value in sorted(roles.items()) if value >= 0.5)
            + f"), other work on the machine {max(0.0, wall * cores - spent - idle):.0f}, idle cores {idle:.0f}",
        )
    ]
