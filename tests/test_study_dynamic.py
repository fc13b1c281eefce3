"""The study benchmark's `dynamic` and `comprehensive` types on one app with cheap tools, through the real sandbox,
the real services and the real analyzers: the reference starts, analyzes and stops each app; Assay's batch runs
every task to its end; the findings compared are each side's own; where the wall went adds up, with the apps' CPU
in their sandboxes counted as theirs."""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from pathlib import Path

import psutil
import pytest

from benchmarks.sandboxed import SANDBOXED
from benchmarks.study import run_study
from benchmarks.study_apps import make_study
from benchmarks.study_dynamic import Batch, dynamic_table, measure_comprehensive, measure_dynamic
from benchmarks.wall_parts import ASSAY, BENCHMARK, IDLE, OTHER, describe, wall_parts
from tests.support.apps import needs_bwrap

pytestmark = needs_bwrap

TOOLS = [
    "reachability",
    "security-headers",
]  # quick checks; security-headers finds what a Flask app leaves out


def persisted(batch: Batch) -> tuple[Counter[str], Counter[tuple[str, str]], int]:
    """Read back from the batch's database file: its tasks per status, tool runs per (tool, status), findings."""
    database = sqlite3.connect(batch.database_url.removeprefix("sqlite+aiosqlite:///"))
    try:
        marks = ",".join("?" * len(batch.task_ids))
        tasks = database.execute(f"SELECT status FROM tasks WHERE task_id IN ({marks})", batch.task_ids)
        runs = database.execute(
            f"SELECT tool, status FROM tool_runs WHERE task_id IN ({marks})", batch.task_ids
        )
        findings = database.execute(
            f"SELECT count(*) FROM findings WHERE task_id IN ({marks})", batch.task_ids
        )
        return Counter(row[0] for row in tasks), Counter(runs), int(findings.fetchone()[0])
    finally:
        database.close()


def assert_the_wall_adds_up(batch: Batch) -> None:
    """The wall's core-seconds split into measured parts that do not exceed it, the apps' CPU among them."""
    cores = os.cpu_count() or 1
    parts = wall_parts(batch.wall_s, cores, batch.spent, batch.idle_s)
    assert sum(parts.values()) == pytest.approx(batch.wall_s * cores)
    apart = (SANDBOXED, BENCHMARK)
    assert parts[ASSAY] == pytest.approx(sum(s for role, s in batch.spent.items() if role not in apart))
    # the app served the checks in its sandbox (and pip prepared it there): CPU the kernel counts for no role
    assert parts[SANDBOXED] > 0
    assert parts[BENCHMARK] > 0 and parts[IDLE] >= 0
    # measured parts counted twice would exceed the wall (slack: the idle time is read over a poll more)
    assert parts[OTHER] >= -0.05 * batch.wall_s * cores
    note = describe(batch.wall_s, cores, batch.spent, batch.idle_s)
    assert f"{SANDBOXED} {parts[SANDBOXED]:.0f}" in note


@pytest.fixture
def apps(tmp_path: Path) -> tuple[Path, list[int]]:
    apps_dir = tmp_path / "apps"
    return apps_dir, [number for _model, number in make_study(apps_dir, 1)]


async def test_a_dynamic_study_measures_the_reference_and_the_batch_on_the_same_app(
    tmp_path: Path, apps: tuple[Path, list[int]]
) -> None:
    apps_dir, numbers = apps
    runs, batch = await measure_dynamic(tmp_path, apps_dir, numbers, run_study, TOOLS)

    # the reference started each app, ran every check against it live, and stopped it
    assert len(runs) == len(numbers) == 1
    for run in runs:
        assert run.start_s > 0 and run.checks_s > 0 and run.stop_s > 0
        assert sorted((tool.tool, tool.status) for tool in run.result.tools) == [
            (t, "success") for t in TOOLS
        ]
    assert not [child for child in psutil.Process().children(recursive=True) if child.name() == "bwrap"]
    # Assay's batch ran every task to its end, every tool in it
    statuses, tool_runs, found = persisted(batch)
    assert statuses == {"completed": len(numbers)}
    assert tool_runs == {(tool, "success"): len(numbers) for tool in TOOLS}
    # the findings compared are the reference's results' and the rows Assay persisted
    reference_found = sum(len(run.result.findings) for run in runs)
    assert reference_found > 0 and found > 0
    rows = dynamic_table(runs, batch)
    assert f"findings: reference {reference_found}, Assay {found} " in rows[0].note
    assert rows[0].baseline == pytest.approx(sum(run.start_s + run.checks_s + run.stop_s for run in runs))
    assert rows[0].assay == batch.wall_s
    assert_the_wall_adds_up(batch)


async def test_a_comprehensive_study_runs_every_analyzer_and_counts_the_apps(
    tmp_path: Path, apps: tuple[Path, list[int]]
) -> None:
    apps_dir, numbers = apps
    batch = await measure_comprehensive(tmp_path, apps_dir, len(numbers), run_study, ["ruff", *TOOLS])

    statuses, tool_runs, found = persisted(batch)
    assert statuses == {"completed": len(numbers)}
    assert tool_runs == {(tool, "success"): len(numbers) for tool in ["ruff", *TOOLS]}
    assert found == batch.findings > 0
    assert {"analyzer", "analyzer-dynamic", "orchestrator"} <= set(batch.spent)
    assert_the_wall_adds_up(batch)
