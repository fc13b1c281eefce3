"""Re-run one HTTP tool against a running app from the command line, as its tool run's `command` spells it:

    python -m services.analyzers.dynamic.replay cors --model M --app N --target URL [--options JSON]
    python -m services.analyzers.performance.replay load --model M --app N --target URL [--options JSON]

It prints the tool's ToolOutput (tool run, findings, metrics) as JSON; exit status 0 when the tool succeeded
or was skipped, 1 otherwise. The app folder (for requirements.json) is found under ASSAY_APPS_DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import msgspec

from services.analyzers.base.analyzer import Analyzer
from services.analyzers.base.cpu_budget import CpuBudget
from services.analyzers.base.job import Job
from services.analyzers.base.runner import run_tool
from shared.operations.app_env import app_env
from shared.operations.config import load_settings
from shared.store.paths import app_dir
from shared.wire.tasks import AnalysisType, TaskRef


async def _quiet(_tool: str, _stage: str, _message: str) -> None:
    """Progress has no reader here."""


def replay(analyzer: Analyzer, argv: list[str] | None = None) -> int:
    """Run the named tool of `analyzer` once, print its output, return the exit status."""
    parser = argparse.ArgumentParser(prog=f"python -m services.analyzers.{analyzer.service}.replay")
    parser.add_argument("tool", choices=list(analyzer.tool_index))
    parser.add_argument("--model", required=True)
    parser.add_argument("--app", type=int, required=True)
    parser.add_argument("--target", action="append", default=[])
    parser.add_argument("--options", default="{}", help="the request's options, as JSON")
    parser.add_argument("--deadline-s", type=float, default=900.0)
    args = parser.parse_args(argv)
    settings = load_settings()
    folder = app_dir(settings.apps_dir, args.model, args.app)
    job = Job(
        request_id="replay",
        task=TaskRef(
            id="task_000000000000",
            model_slug=args.model,
            app_number=args.app,
            analysis_type=msgspec.convert(analyzer.service, AnalysisType),
        ),
        app_dir=folder if folder.is_dir() else None,
        app_env=app_env(folder if folder.is_dir() else None),
        target_urls=args.target,
        options=json.loads(args.options),
        deadline=time.monotonic() + args.deadline_s,
        settings=settings,
        cpu_budget=CpuBudget(settings.tool_concurrency),
        report=_quiet,
    )
    output = asyncio.run(run_tool(analyzer.tool_index[args.tool], job))
    sys.stdout.write(msgspec.json.encode(output).decode() + "\n")
    return 0 if output.run.status in ("success", "skipped") else 1
