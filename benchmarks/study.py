"""A study: N varied apps analyzed as one batch through all of Assay, beside the reference floor

For each analysis type (`static`, `security`): the batch's wall time (first accept → last persisted) through the
real gateway, orchestrator, static analyzer and persister, against the reference floor (benchmarks/study_floor.py:
the CPU time of the same tool commands run app by app as a shell loop would, divided by the cores); then the same
study again on the unchanged apps (a second batch: every tool run is reused). Below each: Assay's CPU per app per
tool (each tool run as the analyzer runs it, app after app, reuse off: its process and Assay's parsing), the
floor's, and whether the findings per app, tool and rule are the same; and where the study's time went: tool
start-up (each tool on an empty file, times its runs), analysis (the rest of the tools' CPU), queueing (accept →
started, summed over tasks), Assay's own processes, other work on the machine (the rest of wall × cores the cores
did not sit idle: other users' processes on a shared machine), and idle cores (the kernel's count of idle time).

`dynamic` (benchmarks/study_dynamic.py): the apps Assay starts in its sandbox and probes, as one batch, beside the
same analysis run app by app, start included; `comprehensive` (there too): a batch of comprehensive tasks, its wall
and whether cores sat idle while apps started. `python -m benchmarks study --apps 6 --types static` for a shorter
run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import msgspec
from sqlalchemy import select

from benchmarks.assay_system import AssaySystem
from benchmarks.common import Row
from benchmarks.persisted import persisted_count, wait_persisted
from benchmarks.sandboxed import SANDBOXED, SandboxSampler
from benchmarks.study_apps import STUDY_MODEL, make_study
from benchmarks.study_floor import Floor, measure_floor, run_measured, study_tools
from benchmarks.wall_parts import ASSAY, BENCHMARK, wall_parts
from services.analyzers.base.cpu_budget import CpuBudget
from services.analyzers.base.tool import SkipTool, ToolOutput
from services.analyzers.static.tools.cli_tool import CliTool
from shared.operations.config import load_settings
from shared.store.database import create_engine
from shared.store.models import FindingRow, Task, ToolRunRow
from tests.support.static import make_job

TYPES = ("static", "security", "dynamic", "comprehensive")
STALL_S = 600.0


def _own_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _children_cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return _own_cpu() + children.ru_utime + children.ru_stime


async def assay_cpu_by_tool(apps: list[tuple[str, Path]], analysis_type: str) -> dict[str, float]:
    """CPU seconds of each tool run the analyzer's way (its `run`, reuse off), every app's run at once as a study's
    tasks ask (so a coalescing tool's runs share processes), in this process: its processes' as the kernel counts
    them for this process, plus what a warm server's forked runs report."""
    totals: dict[str, float] = {}
    budget = CpuBudget(os.cpu_count() or 1)
    for tool in study_tools(analysis_type):
        jobs = [
            msgspec.structs.replace(make_job(folder, deadline_s=600.0), cpu_budget=budget)
            for _name, folder in apps
        ]
        try:
            await tool.ready(jobs[0].settings)  # its version asked once, not by every app's run at once
        except SkipTool:
            continue
        before = _children_cpu()
        outputs = await asyncio.gather(*(tool.run(job) for job in jobs), return_exceptions=True)
        for output in outputs:
            if isinstance(output, BaseException) and not isinstance(output, SkipTool):
                raise output
        reported = sum(
            float(output.metrics.get("cpu_s") or 0.0) for output in outputs if isinstance(output, ToolOutput)
        )
        totals[tool.name] = _children_cpu() - before + reported
    return totals


async def start_up_cpu(tool: CliTool, folder: Path) -> float | None:
    """CPU seconds of one run of `tool` on an empty Python file (and an empty script): its start-up cost."""
    (folder / "empty.py").write_text("")
    (folder / "empty.js").write_text("")
    try:
        program, _version = await tool.ready(load_settings())
        files = tool.targets(folder)
    except SkipTool:
        return None
    _outcome, cpu_s = await asyncio.to_thread(run_measured, tool.command(program, files), folder)
    return cpu_s


async def _batch(
    system: AssaySystem, analysis_type: str, apps: int, tools: list[str] | None = None
) -> tuple[float, list[str]]:
    """Queue the study as one batch (the catalog's tools of the type, or `tools`); the accept time (epoch seconds)
    and its task ids."""
    body: dict[str, object] = {"analysis_types": [analysis_type]}
    if tools:
        body["tools"] = tools
    async with httpx.AsyncClient(trust_env=False, timeout=60) as client:
        answer = await client.post(
            f"http://127.0.0.1:{system.gateway_port}/api/batches", headers=system.headers, json=body
        )
    accepted = time.time()
    answer.raise_for_status()
    task_ids = list(answer.json()["task_ids"])
    if len(task_ids) != apps:
        raise RuntimeError(f"the batch queued {len(task_ids)} tasks for {apps} apps")
    return accepted, task_ids


async def _recorded(
    database_url: str, task_ids: list[str]
) -> tuple[Counter[tuple[str, str, str]], Counter[str], float, dict[str, float]]:
    """Findings per (app, tool, rule), tool runs per status, seconds queued (accept → started) summed, and the tools'
    wall seconds summed per tool."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            tasks = (
                await connection.execute(
                    select(Task.task_id, Task.app_number, Task.created_at, Task.started_at).where(
                        Task.task_id.in_(task_ids)
                    )
                )
            ).all()
            apps = {task_id: f"app{number}" for task_id, number, _created, _started in tasks}
            findings = (
                await connection.execute(
                    select(FindingRow.task_id, FindingRow.tool, FindingRow.rule_id).where(
                        FindingRow.task_id.in_(task_ids)
                    )
                )
            ).all()
            runs = (
                await connection.execute(
                    select(ToolRunRow.tool, ToolRunRow.status, ToolRunRow.duration_s).where(
                        ToolRunRow.task_id.in_(task_ids)
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    queued = sum((started - created).total_seconds() for _id, _n, created, started in tasks if started)
    by_rule = Counter((apps[task_id], tool, rule) for task_id, tool, rule in findings)
    durations: dict[str, float] = {}
    for tool, _status, duration in runs:
        durations[tool] = durations.get(tool, 0.0) + duration
    return by_rule, Counter(status for _tool, status, _duration in runs), queued, durations


async def run_study(
    system: AssaySystem, analysis_type: str, apps: int, tools: list[str] | None = None
) -> tuple[float, list[str], dict[str, float], float]:
    """One batch of the study through Assay: wall (first accept → last persisted), its tasks, CPU of each role (and
    of the apps and their preparation in Assay's sandboxes, SANDBOXED, and of this process, BENCHMARK), and the
    core-seconds the machine's cores sat idle meanwhile."""
    from benchmarks.cpu import cpu_snapshot, cpu_spent, machine_idle_s

    already = await persisted_count(system.database_url)
    sandboxes = SandboxSampler(list(system.roles().values()))
    sandboxes.start()
    own_before = _own_cpu()
    before, idle_before, started = cpu_snapshot(system.roles()), machine_idle_s(), time.monotonic()
    try:
        accepted, task_ids = await _batch(system, analysis_type, apps, tools)
        persisted = await wait_persisted(system.database_url, task_ids, already, 3600.0 * 4, STALL_S)
        spent = cpu_spent(before, cpu_snapshot(system.roles()))
    finally:
        sandboxed = await asyncio.to_thread(sandboxes.stop)
    spent[SANDBOXED], spent[BENCHMARK] = sandboxed, _own_cpu() - own_before
    if len(persisted) != len(task_ids):
        raise RuntimeError(
            f"{len(persisted)} of {len(task_ids)} tasks persisted (logs in {system.root / 'logs'})"
        )
    wall = max(persisted.values()) - accepted
    # the wait notices the last task up to a poll later: the idle time is counted over the study's wall only
    idle = (machine_idle_s() - idle_before) * wall / max(wall, time.monotonic() - started)
    return wall, task_ids, spent, idle


def _differences(floor: Counter[tuple[str, str, str]], assay: Counter[tuple[str, str, str]]) -> str:
    missing, extra = floor - assay, assay - floor
    if not missing and not extra:
        return f"same {sum(floor.values())} findings per app, tool and rule"
    shown = (
        ", ".join(f"-{key}" for key in list(missing)[:3])
        + " "
        + ", ".join(f"+{key}" for key in list(extra)[:3])
    )
    return f"{sum(missing.values())} missing, {sum(extra.values())} extra: {shown.strip()}"


def study_apps(root: Path, count: int) -> list[tuple[str, Path]]:
    """The study's apps under `root/apps` (made on the first call): (name, folder) of each, in order."""
    apps_dir = root / "apps"
    if not apps_dir.exists():
        make_study(apps_dir, count)
    return sorted(
        ((folder.name, folder) for folder in (apps_dir / STUDY_MODEL).iterdir()),
        key=lambda pair: int(pair[0][3:]),
    )


async def study_rows(root: Path, count: int, analysis_type: str) -> list[Row]:
    """The rows of one analysis type: the study against its floor (dynamic: against the app-by-app loop), the
    re-run, per tool, where the time went."""
    apps = study_apps(root, count)
    apps_dir = root / "apps"
    if analysis_type == "dynamic":
        from benchmarks.study_dynamic import dynamic_rows  # it runs its batches with run_study, from here

        return await dynamic_rows(root, apps_dir, [int(name[3:]) for name, _folder in apps], run_study)
    if analysis_type == "comprehensive":
        from benchmarks.study_dynamic import comprehensive_rows

        return await comprehensive_rows(root, apps_dir, len(apps), run_study)
    load = os.getloadavg()[0]
    floor: Floor = await measure_floor(apps, analysis_type)
    system = AssaySystem(root / analysis_type, apps_dir, analyzer_module="services.analyzers.static")
    await asyncio.to_thread(system.start)
    try:
        wall, task_ids, roles, idle = await run_study(system, analysis_type, len(apps))
        again, again_ids, _roles, _idle = await run_study(system, analysis_type, len(apps))
        found, _statuses, queued, _durations = await _recorded(system.database_url, task_ids)
        _found_again, statuses_again, _queued, durations_again = await _recorded(
            system.database_url, again_ids
        )
    finally:
        await asyncio.to_thread(system.stop)
    per_tool = await assay_cpu_by_tool(apps, analysis_type)
    scratch = root / "empty"
    scratch.mkdir(exist_ok=True)
    start_ups = {tool.name: await start_up_cpu(tool, scratch) for tool in study_tools(analysis_type)}
    runs = Counter(run.tool for run in floor.runs)
    start_up = sum((start_ups.get(tool) or 0.0) * number for tool, number in runs.items())
    cores = os.cpu_count() or 1
    parts = wall_parts(wall, cores, roles, idle)
    spent = parts[ASSAY]
    n = len(apps)
    rows = [
        Row(
            f"{analysis_type}: {n} apps, reference floor / study wall",
            "s",
            floor.floor_s,
            wall,
            note=f"floor: {floor.processes} tool processes, {floor.cpu_s:.0f} CPU-s over {cores} cores; "
            + _differences(floor.findings(), found),
        ),
        Row(
            f"{analysis_type}: reference floor / Assay's CPU (every process) ÷ cores",
            "s",
            floor.floor_s,
            spent / cores,
            note=f"the wall on idle cores with no core left idle; load average at the start {load:.1f}",
        ),
        Row(
            f"{analysis_type}: first run / re-run on unchanged apps",
            "s",
            wall,
            again,
            note=", ".join(f"{count} {status}" for status, count in sorted(statuses_again.items()))
            + "; slowest tools (s, summed): "
            + ", ".join(
                f"{tool} {s:.1f}" for tool, s in sorted(durations_again.items(), key=lambda p: -p[1])[:3]
            ),
        ),
    ]
    floor_by_tool = floor.cpu_by_tool()
    for tool in sorted(set(floor_by_tool) | set(per_tool)):
        rows.append(
            Row(
                f"  {tool}: CPU per app, floor / Assay",
                "s",
                floor_by_tool.get(tool, 0.0) / n if tool in floor_by_tool else None,
                per_tool.get(tool, 0.0) / n if tool in per_tool else None,
                note=f"start-up {start_ups[tool]:.2f} s" if start_ups.get(tool) is not None else "",
            )
        )
    tools_cpu = roles.get("analyzer", 0.0)
    where = {
        "tool start-up": start_up,
        "analysis (tools' CPU beyond start-up)": max(0.0, floor.cpu_s - start_up),
        **parts,
    }
    rows.append(
        Row(
            f"{analysis_type}: where the study's time went (CPU-s, of {wall * cores:.0f} core-s)",
            "s",
            None,
            None,
            note="; ".join(f"{name} {value:.0f}" for name, value in where.items())
            + f"; queueing {queued:.0f} task-s; analyzer incl. tools {tools_cpu:.0f}; "
            + ", ".join(
                f"{role} {value:.0f}"
                for role, value in sorted(roles.items())
                if role not in ("analyzer", SANDBOXED, BENCHMARK)
            ),
        )
    )
    return rows


def run(argv: list[str]) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks study")
    parser.add_argument("--apps", type=int, default=30, help="apps in the study (default 30)")
    parser.add_argument("--types", default=",".join(TYPES), help=f"comma-separated, of {', '.join(TYPES)}")
    args, _rest = parser.parse_known_args(argv)
    types = [name for name in args.types.split(",") if name]
    unknown = sorted(set(types) - set(TYPES))
    if unknown:
        raise SystemExit(f"unknown study types: {', '.join(unknown)}; known: {', '.join(TYPES)}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="assay-study-") as tmp:
        for analysis_type in types:
            rows.extend(asyncio.run(study_rows(Path(tmp), args.apps, analysis_type)))
    return rows
