"""The study benchmark's reference floor on a tiny study: it runs one process per app and tool, counts them, takes
their CPU time from the kernel, and reads their outputs into the same findings Assay's tools report."""

from __future__ import annotations

import resource
from collections import Counter
from pathlib import Path

from benchmarks.study_apps import make_study
from benchmarks.study_floor import measure_floor
from services.analyzers.static.tools.bandit import Bandit
from services.analyzers.static.tools.ruff import Ruff
from tests.support.static import run_in_process


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def test_the_floor_of_a_tiny_study_counts_its_tool_processes_and_their_cpu(tmp_path: Path) -> None:
    made = make_study(tmp_path / "apps", 3)
    apps = [(f"app{number}", tmp_path / "apps" / model / f"app{number}") for model, number in made]
    # no two apps of a study are the same
    assert len({(folder / "backend" / "app.py").read_text() for _name, folder in apps}) == 3

    before = children_cpu()
    floor = await measure_floor(apps, "static", only=frozenset({"ruff", "bandit"}))
    spent = children_cpu() - before

    assert floor.processes == 6
    assert Counter((run.app, run.tool) for run in floor.runs) == {
        (app, tool): 1 for app in ("app1", "app2", "app3") for tool in ("ruff", "bandit")
    }
    assert all(run.cpu_s > 0 and run.status == "success" for run in floor.runs)
    # the kernel's count of every child this test reaped: the six tools and two `--version` probes
    assert 0.6 * spent <= floor.cpu_s <= spent + 0.01
    assert floor.floor_s == floor.cpu_s / floor.cores
    assert set(floor.cpu_by_tool()) == {"ruff", "bandit"}
    # the floor's findings are what Assay's tools report on each app, rule by rule
    for name, folder in apps:
        result = await run_in_process([Ruff(), Bandit()], folder)
        assay = Counter((name, finding.tool, finding.rule_id) for finding in result.findings)
        assert Counter({key: n for key, n in floor.findings().items() if key[0] == name}) == assay
    # the variations differ in what the tools find: app1 has a shell call (app2 an unused variable, app3 a type error)
    assert floor.findings()[("app1", "bandit", "B602")] == 1
