"""What the app's environment changes for pylint and mypy, and what preparing it adds to a static task.

For every app under the apps root (default: generated/apps): the time `AppRunner.python_environment` takes with an
empty cache (a miss: pip in the preparation sandbox) and again (a hit), then pylint and mypy run in-process
(warm pylint, as the analyzer runs them) without the environment and with it: their findings and their
unresolved-imports notes. Needs bubblewrap and the machine's package index.

Run: `.venv/bin/python -m benchmarks.static_app_env [apps root]`; prints one line per app and tool. The tools are
the ones beside the interpreter that runs it: run it with one where only Assay is installed (`pip install .`, as the
image is) to see "without" as the image's analyzer sees it (the development venv has flask, an extra of the tests).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from services.analyzers.base.cpu_budget import CpuBudget
from services.analyzers.base.job import Job
from services.analyzers.base.runner import run_tools
from services.analyzers.static.tools.mypy import Mypy
from services.analyzers.static.tools.pylint import Pylint
from services.orchestrator.apps.runner import AppRunner
from shared.operations.config import load_settings
from shared.wire.messages import AnalysisRequest
from shared.wire.protocol import PythonEnvironment, ServiceResult
from shared.wire.tasks import TaskRef


async def _tools(
    task: TaskRef, app: Path, env: dict[str, str], sent: PythonEnvironment | None
) -> ServiceResult:
    async def report(_tool: str, _stage: str, _message: str) -> None:
        return None

    job = Job(
        request_id="bench",
        task=task,
        app_dir=app,
        target_urls=[],
        options={},
        deadline=time.monotonic() + 600,
        settings=load_settings(env),
        cpu_budget=CpuBudget(2),
        report=report,
        python_env=sent,
    )
    return await run_tools("static", [Pylint(), Mypy()], job)


def _counts(result: ServiceResult, tool: str) -> str:
    findings = [f for f in result.findings if f.tool == tool and f.rule_id != "unresolved-imports"]
    notes = [
        f.extra.get("modules", {})
        for f in result.findings
        if f.tool == tool and f.rule_id == "unresolved-imports"
    ]
    unresolved = sorted(name for note in notes for name in note)
    return f"{len(findings)} findings, unresolved: {', '.join(unresolved) or 'none'}"


async def main(apps_root: Path, found: list[Path]) -> None:
    work = Path(tempfile.mkdtemp(prefix="assay-apps-"))
    var = Path(tempfile.mkdtemp(prefix="assay-bench-"))
    env = {
        "ASSAY_APPS_DIR": str(apps_root),
        "ASSAY_APP_WORK_DIR": str(work),
        "ASSAY_VAR_DIR": str(var),
        "ASSAY_TOOL_CACHE_DIR": str(var / "tool-cache"),
    }
    runner = AppRunner(load_settings(env))
    try:
        for number, app in enumerate(found, start=1):
            task = TaskRef(
                id=f"task_{number:012x}",
                model_slug=app.parent.name,
                app_number=int(app.name[3:]),
                analysis_type="static",
            )
            timings = []
            for _ in range(2):
                started = time.monotonic()
                sent = await runner.python_environment(AnalysisRequest(task=task))
                timings.append(time.monotonic() - started)
            print(
                f"{app.relative_to(apps_root)}: preparation miss {timings[0]:.2f} s, hit {timings[1]:.3f} s: {sent}"
            )
            before = await _tools(task, app, env, None)
            after = await _tools(task, app, env, sent)
            for tool in ("pylint", "mypy"):
                print(f"  {tool}: without: {_counts(before, tool)}; with: {_counts(after, tool)}")
            print(f"  environment: {msgspec.json.encode(after.metrics.get('mypy', {})).decode()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("generated/apps")
    asyncio.run(main(root, sorted(root.glob("*/app*"))))
