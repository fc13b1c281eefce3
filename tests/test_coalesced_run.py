"""Coalesced runs with the real semgrep on real apps (the study's varied copies of the sample apps): the runs of
several tasks asking at about the same time become one process over all their apps, and each task gets exactly
the record and findings of a run of its own."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest

from benchmarks.study_apps import STUDY_MODEL, make_study
from services.analyzers.base.cpu_budget import CpuBudget
from services.analyzers.base.job import Job
from services.analyzers.base.tool import ToolOutput
from services.analyzers.static.tools.semgrep import Semgrep
from shared.results.findings import Finding
from tests.support.static import make_job

APPS = 5
ALONE = {"ASSAY_COALESCE_WINDOW_S": "0"}


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("apps")
    return [root / model / f"app{number}" for model, number in make_study(root, APPS)]


def comparable(output: ToolOutput) -> tuple[dict[str, object], list[Finding]]:
    """A run's record without its timing, and its findings in a fixed order."""
    record = msgspec.structs.asdict(output.run)
    record.pop("duration_s")
    return record, sorted(output.findings, key=lambda f: (f.path or "", f.line or 0, f.rule_id, f.message))


async def together(tool: Semgrep, apps: list[Path], env: dict[str, str] | None = None) -> list[ToolOutput]:
    """Every app's run at once, as the concurrent tasks of a study ask, sharing one CPU budget."""
    budget = CpuBudget(2)
    jobs = [msgspec.structs.replace(make_job(app, env=env), cpu_budget=budget) for app in apps]
    return list(await asyncio.gather(*(tool.run(job) for job in jobs)))


async def test_a_coalesced_semgrep_run_gives_each_task_the_findings_of_its_own_run(apps: list[Path]) -> None:
    tool = Semgrep()
    alone = [await tool.run(make_job(app, env=ALONE)) for app in apps]
    coalesced = await together(tool, apps)
    assert [output.metrics.get("apps_in_process") for output in coalesced] == [APPS] * APPS
    assert all("apps_in_process" not in output.metrics for output in alone)
    for own, shared in zip(alone, coalesced, strict=True):
        assert shared.run.status == own.run.status == "success"
        assert comparable(shared) == comparable(own)
        assert (
            shared.run.command == own.run.command
        )  # its own command: run in its folder, it reproduces the output
    # the apps differ in what semgrep finds, so a finding handed to the wrong app could not go unnoticed
    assert len({tuple(f.rule_id for f in comparable(own)[1]) for own in alone}) > 1
    assert all(
        finding.path and not finding.path.startswith(STUDY_MODEL)
        for own in coalesced
        for finding in own.findings
    )


async def test_runs_asking_apart_or_of_other_priorities_are_not_coalesced(apps: list[Path]) -> None:
    tool = Semgrep()
    budget = CpuBudget(2)
    urgent = msgspec.structs.replace(make_job(apps[0]), cpu_budget=budget, priority="high")
    normal = msgspec.structs.replace(make_job(apps[1]), cpu_budget=budget)
    outputs = await asyncio.gather(tool.run(urgent), tool.run(normal))
    assert all("apps_in_process" not in output.metrics for output in outputs)
    later = await tool.run(make_job(apps[2]))
    assert "apps_in_process" not in later.metrics and later.run.status == "success"


async def test_a_task_cancelled_midway_leaves_the_others_their_findings(apps: list[Path]) -> None:
    tool = Semgrep()
    budget = CpuBudget(2)
    jobs = [msgspec.structs.replace(make_job(app), cpu_budget=budget) for app in apps[:3]]
    await tool.ready(jobs[0].settings)  # its version asked once: the three runs join the batch at once
    runs = [asyncio.create_task(tool.run(job)) for job in jobs]
    await asyncio.sleep(0.1)  # within the batch's window: the cancelled task's app is left out of its process
    runs[0].cancel()
    finished = await asyncio.gather(*runs[1:])
    assert runs[0].cancelled()
    alone = [await tool.run(make_job(app, env=ALONE)) for app in apps[1:3]]
    assert [comparable(output) for output in finished] == [comparable(output) for output in alone]
    assert [output.metrics.get("apps_in_process") for output in finished] == [2, 2]


async def test_the_same_app_asked_for_twice_shares_its_part_of_the_process(apps: list[Path]) -> None:
    """A batch's `static` and `security` tasks of one app ask semgrep for the same files at once."""
    tool = Semgrep()
    await tool.ready(make_job(apps[0]).settings)  # its version asked before the runs
    outputs = await together(tool, [apps[0], apps[1], apps[0]])
    assert [output.metrics.get("apps_in_process") for output in outputs] == [2, 2, 2]
    own = await tool.run(make_job(apps[0], env=ALONE))
    assert comparable(outputs[0]) == comparable(outputs[2]) == comparable(own)


async def test_a_task_whose_own_time_ends_first_times_out_alone_and_the_others_are_not_run_again(
    apps: list[Path],
) -> None:
    """The process runs for the longest timeout: a task near its deadline (here its own semgrep timeout of 1 s,
    shorter than semgrep's start-up) gets its timed-out outcome when its own time ends, and the other tasks get
    their parts of the same process instead of each running its own after it."""
    tool = Semgrep()
    await tool.ready(make_job(apps[0]).settings)  # its version asked before the runs
    budget = CpuBudget(2)
    short = msgspec.structs.replace(make_job(apps[0], {"timeouts": {"semgrep": 1.0}}), cpu_budget=budget)
    jobs = [short, *(msgspec.structs.replace(make_job(app), cpu_budget=budget) for app in apps[1:3])]
    ended: dict[int, float] = {}

    async def run(index: int, job: Job) -> ToolOutput:
        output = await tool.run(job)
        ended[index] = time.monotonic()
        return output

    timed_out, *finished = await asyncio.gather(*(run(index, job) for index, job in enumerate(jobs)))

    assert timed_out.run.status == "timeout" and timed_out.run.duration_s == 1.0 and timed_out.findings == []
    assert timed_out.run.reason and "shared with 2 other apps" in timed_out.run.reason
    assert ended[0] < min(ended[1], ended[2])  # it did not wait for the process it shared
    assert [output.metrics.get("apps_in_process") for output in [timed_out, *finished]] == [3, 3, 3]
    alone = [await tool.run(make_job(app, env=ALONE)) for app in apps[:3]]
    assert timed_out.run.command == alone[0].run.command  # its own command, as its own run's record says
    assert all(output.run.status == "success" for output in finished)
    assert [comparable(output) for output in finished] == [comparable(output) for output in alone[1:]]
