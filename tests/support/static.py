"""What the static analyzer tests share: app folders built in tmp from the samples, and a Job to run tools with
in-process. (No tests here: used by test_static_*.py.)"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.analyzers.base.cpu_budget import CpuBudget
from services.analyzers.base.job import Job
from services.analyzers.base.reuse import ReuseStore
from services.analyzers.base.runner import run_tools
from services.analyzers.base.tool import Tool
from shared.operations.config import load_settings
from shared.wire.protocol import ServiceResult
from shared.wire.tasks import TaskRef

REPO = Path(__file__).resolve().parents[2]
# The tool cache of the tests' in-process runs (a Job's default settings): the analyzers the tests start share it, as
# the analyzers of one host do, so an analyzer started again asks no tool its version again (tool_versions.py).
TOOL_CACHE_DIR = str(load_settings({}).tool_cache_dir)
SAMPLE_APPS = REPO / "generated" / "apps"
SAMPLE = "openai_codex-mini/app1"

# Two functions radon ranks D and E, so the complexity tool has something to find in the test app.
COMPLEX_MODULE = (
    '''"""Pricing rules, deliberately branchy."""


def discount(kind, amount, member, coupon, season):
'''
    + "".join(f"    if kind == {i} and amount > {i}:\n        return {i}\n" for i in range(12))
    + """    return 0


def shipping(zone, weight):
"""
    + "".join(f"    if zone == {i} or weight > {i}:\n        weight += {i}\n" for i in range(16))
    + """    return weight
"""
)


def copy_sample(
    apps_root: Path, sample: str = SAMPLE, model: str = "openai_codex-mini", number: int = 1
) -> Path:
    """A copy of a sample app at `<apps_root>/<model>/app<number>`, so the tests never see it change mid-run."""
    target = apps_root / model / f"app{number}"
    shutil.copytree(SAMPLE_APPS / sample, target)
    return target


def write_many_modules(app: Path, count: int) -> None:
    """`count` ordinary Python modules: enough work to keep pylint busy for several seconds."""
    backend = app / "backend"
    backend.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (backend / f"store_{index}.py").write_text(
            f'"""Store {index}."""\nimport json\nimport os\n\n\n'
            f"class Store{index}:\n"
            "    def __init__(self, path):\n        self.path = path\n        self.items = {}\n\n"
            "    def load(self):\n        if os.path.exists(self.path):\n"
            "            with open(self.path) as handle:\n                self.items = json.load(handle)\n"
            "        return self.items\n\n\n"
            f"def total_{index}(values):\n    total = 0\n    for value in values:\n"
            "        if value % 2 == 0:\n            total += value\n        else:\n            total -= 1\n"
            "    return total\n"
        )


def make_job(
    app_dir: Path | None,
    options: dict[str, Any] | None = None,
    deadline_s: float = 120.0,
    *,
    reuse: ReuseStore | None = None,
    task_id: str = "task_00000000beef",
    env: dict[str, str] | None = None,
    cpu_budget: CpuBudget | None = None,
) -> Job:
    """A Job as the server builds it, for running tools in-process (with `reuse`: looking for stored runs; with
    `cpu_budget`: sharing the slots of other jobs, as the runs of one analyzer process do)."""

    async def report(_tool: str, _stage: str, _message: str) -> None:
        return None

    return Job(
        request_id="req-static",
        task=TaskRef(id=task_id, model_slug="openai_codex-mini", app_number=1, analysis_type="static"),
        app_dir=app_dir,
        target_urls=[],
        options=options or {},
        deadline=time.monotonic() + deadline_s,
        settings=load_settings(env or {}),
        cpu_budget=cpu_budget or CpuBudget(2),
        report=report,
        reuse=reuse,
    )


async def run_in_process(
    tools: Sequence[Tool],
    app_dir: Path,
    options: dict[str, Any] | None = None,
    cpu_budget: CpuBudget | None = None,
) -> ServiceResult:
    return await run_tools("static", list(tools), make_job(app_dir, options, cpu_budget=cpu_budget))
