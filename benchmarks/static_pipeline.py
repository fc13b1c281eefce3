"""A full static analysis of a sample app through all of Assay (gateway → orchestrator → static analyzer →
persister) against the same tools run one after another directly, each with the argv its tool record holds, in
the app folder (the record's working directory). Both analyze a fresh copy of the app; Assay runs first, since
its records name the commands. Complements static_concurrency.py, which times the analyzer alone, in-process.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

from sqlalchemy import select

from benchmarks.assay_system import AssaySystem
from benchmarks.common import Row
from benchmarks.load import burst
from benchmarks.static_concurrency import MODEL, NUMBER, SAMPLE
from benchmarks.systems import run_load
from shared.store.database import create_engine
from shared.store.models import ToolRunRow

TOOL_TIMEOUT_S = 300.0


async def _commands(database_url: str, task_id: str) -> list[tuple[str, list[str]]]:
    """(tool, argv) of every tool that ran for the task (skipped tools ran nothing)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = (
                select(ToolRunRow.tool, ToolRunRow.command)
                .where(ToolRunRow.task_id == task_id, ToolRunRow.status != "skipped")
                .order_by(ToolRunRow.id)
            )
            return [(tool, list(command)) for tool, command in (await connection.execute(query)).all()]
    finally:
        await engine.dispose()


async def _run_directly(argv: list[str], cwd: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(os.environ),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await asyncio.wait_for(process.wait(), TOOL_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()


async def static_rows(root: Path, timeout_s: float) -> list[Row]:
    """One row: wall time through Assay (accept → persisted) against the sequential direct runs."""
    apps = root / "apps"
    await asyncio.to_thread(shutil.copytree, SAMPLE, apps / MODEL / f"app{NUMBER}")
    system = AssaySystem(root / "assay", apps, analyzer_module="services.analyzers.static")
    request = {"model_slug": MODEL, "app_number": NUMBER, "analysis_type": "static"}
    await asyncio.to_thread(system.start)
    try:
        trial = await run_load(
            system, burst(system.submit_url, system.headers, request, 1, 1), timeout_s, timeout_s
        )
    finally:
        await asyncio.to_thread(system.stop)
    latencies = trial.latencies()
    if not latencies:
        return [Row(f"full static analysis of {MODEL}/app{NUMBER}", "s", None, None, note=trial.note(1))]
    task_id = next(iter(trial.persisted))
    commands = await _commands(system.database_url, task_id)
    direct = root / "direct" / MODEL / f"app{NUMBER}"
    await asyncio.to_thread(shutil.copytree, SAMPLE, direct)
    started = time.perf_counter()
    for _tool, argv in commands:
        await _run_directly(argv, direct)
    sequential = time.perf_counter() - started
    tools = ", ".join(tool for tool, _argv in commands)
    return [
        Row(
            f"full static analysis of {MODEL}/app{NUMBER}: sequential argv / through Assay",
            "s",
            sequential,
            latencies[0],
            note=f"{len(commands)} tools: {tools}",
        )
    ]
