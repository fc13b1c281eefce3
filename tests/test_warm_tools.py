"""The cheaper ways the static tools run give the same findings as their command lines: pylint, bandit, detect-secrets,
vulture, radon and pip-audit in their warm servers (forked per run from a process that imported and warmed the tool once), mypy with its cache kept between apps. Real tools
on the sample apps and on varied study apps."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import msgspec
import pytest

from benchmarks.study_apps import make_study, samples
from services.analyzers.base.runner import run_tools
from services.analyzers.static.tools.bandit import Bandit
from services.analyzers.static.tools.cli_tool import CliTool
from services.analyzers.static.tools.detect_secrets import DetectSecrets
from services.analyzers.static.tools.mypy import Mypy
from services.analyzers.static.tools.pip_audit import PipAudit
from services.analyzers.static.tools.pylint import WARM_SERVER, Pylint
from services.analyzers.static.tools.radon import Radon
from services.analyzers.static.tools.vulture import Vulture
from shared.results.findings import Finding
from tests.support.static import COMPLEX_MODULE, copy_sample, make_job, write_many_modules

COLD = {"ASSAY_WARM_TOOLS": "off"}


def ordered(findings: list[Finding]) -> bytes:
    return msgspec.json.encode(
        sorted(findings, key=lambda f: (f.path or "", f.line or 0, f.rule_id, f.message))
    )


@pytest.fixture
def apps(tmp_path: Path) -> list[Path]:
    made = make_study(tmp_path / "apps", 4)
    copies = [
        copy_sample(tmp_path / "samples", sample.relative_to(sample.parents[1]).as_posix())
        for sample in samples()[:1]
    ]
    folders = [tmp_path / "apps" / model / f"app{number}" for model, number in made] + copies
    for folder in folders:  # functions radon ranks D and E, so that it has findings to compare too
        (folder / "backend" / "pricing.py").write_text(COMPLEX_MODULE)
    return folders


WARM_TOOLS = [Pylint, Bandit, DetectSecrets, Vulture, Radon]


@pytest.mark.parametrize("tool", WARM_TOOLS, ids=lambda tool: tool.name)
async def test_a_tool_in_its_warm_server_reports_what_its_command_line_reports(
    tool: type[CliTool], apps: list[Path]
) -> None:
    for app in apps:
        warm = await run_tools("static", [tool()], make_job(app))
        cold = await run_tools("static", [tool()], make_job(app, env=COLD))
        assert warm.tools[0].status == cold.tools[0].status == "success"
        assert "cpu_s" in warm.metrics[tool.name] and tool.name not in cold.metrics  # it really ran warm
        assert (
            warm.tools[0].command == cold.tools[0].command
        )  # the record names the command that reproduces it
        assert warm.tools[0].exit_code == cold.tools[0].exit_code
        assert ordered(warm.findings) == ordered(cold.findings), app
        if tool is not DetectSecrets:  # the apps hold no secret detect-secrets recognizes
            assert warm.findings, (tool.name, app)


async def test_pip_audit_in_its_warm_server_answers_what_its_command_line_answers(apps: list[Path]) -> None:
    """Whatever the advisory database says here (findings, or that it could audit nothing), both say the same, and
    the warm run asks it beside the CPU budget (a budget with no free slot does not hold it back)."""
    for app in apps[:2]:
        job = make_job(app)
        await job.cpu_budget.acquire()
        await job.cpu_budget.acquire()  # every slot taken: a run that needed one would wait for ever
        warm = await asyncio.wait_for(run_tools("static", [PipAudit()], job), 120)
        cold = await run_tools("static", [PipAudit()], make_job(app, env=COLD))
        assert "cpu_s" in warm.metrics["pip-audit"] and "pip-audit" not in cold.metrics  # it really ran warm
        assert warm.tools[0].status == cold.tools[0].status != "failed", (warm.tools[0], cold.tools[0])
        assert warm.tools[0].reason == cold.tools[0].reason and warm.tools[0].command == cold.tools[0].command
        assert ordered(warm.findings) == ordered(cold.findings), app


def processes_in(folder: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == folder:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def test_a_warm_run_past_its_timeout_is_killed(tmp_path: Path) -> None:
    app = copy_sample(tmp_path / "apps")
    await run_tools("static", [Pylint()], make_job(app))  # the server is warm before the timed run
    write_many_modules(app, 400)
    result = await run_tools("static", [Pylint()], make_job(app, {"timeouts": {"pylint": 1.0}}))
    assert result.tools[0].status == "timeout"
    # the forked run and its group are gone (the server reaps its children at least once a second)
    deadline = time.monotonic() + 5
    while processes_in(app.resolve()) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert processes_in(app.resolve()) == []


async def test_a_stopped_warm_server_is_started_again(tmp_path: Path) -> None:
    app = copy_sample(tmp_path / "apps")
    first = await run_tools("static", [Pylint()], make_job(app))
    WARM_SERVER.stop()
    again = await run_tools("static", [Pylint()], make_job(app))
    assert ordered(again.findings) == ordered(first.findings) and again.tools[0].status == "success"


async def test_mypy_with_its_cache_kept_between_apps_reports_what_a_fresh_mypy_reports(
    apps: list[Path], tmp_path: Path
) -> None:
    shared = {"ASSAY_TOOL_CACHE_DIR": str(tmp_path / "shared-cache")}
    for index, app in enumerate(apps):
        cached = await run_tools("static", [Mypy()], make_job(app, env=shared))
        alone = {"ASSAY_TOOL_CACHE_DIR": str(tmp_path / f"cache-{index}")}
        fresh = await run_tools("static", [Mypy()], make_job(app, env=alone))
        assert cached.tools[0].status == fresh.tools[0].status == "success"
        assert ordered(cached.findings) == ordered(fresh.findings), app
