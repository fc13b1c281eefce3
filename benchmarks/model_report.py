"""Model comparison: `GET /api/reports/models`'s work over 10,000 tasks and 1,000,000 findings in SQLite.

The database is migrated with Assay's migrations and filled (untimed) with 10 models x 250 apps x 4 analysis
types, 100 findings per task in 60 issue groups, each static run with the finding summary the persister stores
(shared/results/finding_summary), and load metrics on the performance tasks. The timed work is what the route does:
`reports.queries.report_rows` (SQL) then `reports.report.models_report` (verdicts, pairwise tests, families,
quality figures with bootstrap intervals), median of three runs. The goal is under 2 s; there is no baseline (the system Assay replaces had no such report),
so the table shows the goal in its place, and the note the CPU seconds (the machine may be shared).
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import Row
from services.gateway.api.reports.queries import Scope, report_rows
from services.gateway.api.reports.report import models_report
from shared.results.finding_summary import summarize
from shared.results.findings import SEVERITIES, Finding
from shared.store.database import create_engine, migrate, sessions

MODELS, APPS, TYPES = 10, 250, ("security", "static", "performance", "comprehensive")
FINDINGS_PER_TASK = 100
TOOLS = (("bandit", "B608", "CWE-89"), ("ruff", "S608", None), ("semgrep", "python-sql", "CWE-89"),
         ("pylint", "C0116", None), ("mypy", "arg-type", None), ("eslint", "no-unused-vars", None),
         ("radon", "C901", None), ("vulture", "unused-function", None))  # fmt: skip
REPEATS = 3
GOAL_S = 2.0


def verdicts(rng: random.Random) -> str:
    """A task's verdicts as the persister stores them, each with a reason and the findings behind it."""

    def one(answer: str) -> dict[str, object]:
        behind = [f"{rng.getrandbits(128):032x}" for _ in range(rng.randint(0, 5))]
        return {
            "answer": answer,
            "reason": "3 of 8 declared endpoints did not answer as promised: …",
            "findings": behind,
        }

    return json.dumps(
        {name: one(rng.choice(("yes", "no", "unknown"))) for name in ("works", "exploitable", "flagged")}
    )


def fill(path: Path) -> int:
    """Tasks, findings and service runs written with sqlite3 executemany (fast, untimed); returns findings."""
    rng = random.Random(5)
    now = datetime.now(UTC)
    tasks: list[tuple[object, ...]] = []
    findings: list[tuple[object, ...]] = []
    runs: list[tuple[object, ...]] = []
    number = 0
    for model in range(MODELS):
        for app in range(1, APPS + 1):
            for analysis_type in TYPES:
                number += 1
                task_id = f"task_{number:012x}"
                created = (now - timedelta(seconds=number)).isoformat()
                tasks.append(
                    (task_id, f"model-{model}", app, analysis_type, "normal", "[]", "[]", "completed", 100.0, 0,
                     "{}", created, created, rng.randint(200, 3000), verdicts(rng))
                )  # fmt: skip
                built, keys = [], []
                for index in range(FINDINGS_PER_TASK):
                    tool, rule, cwe = TOOLS[index % len(TOOLS)]
                    built.append(
                        Finding(
                            tool=tool, rule_id=rule, severity=rng.choice(SEVERITIES), message="m", cwe=cwe
                        )
                    )
                    keys.append(f"g{number}-{index % 60}")
                    findings.append(
                        (task_id, "static", tool, rule, built[-1].severity, "quality", "m", "backend/app.py",
                         index, cwe, f"{number:x}-{index}", "{}", keys[-1])
                    )  # fmt: skip
                summary = json.dumps(summarize(built, keys))
                runs.append((task_id, "static", "success", len(built), "{}", summary, f"s{number}", created))
                if analysis_type == "performance":
                    url = {
                        "requests": 200,
                        "errors": rng.randint(0, 9),
                        "latency_ms": {"p50": 12.0, "p99": 80.0},
                    }
                    metrics = json.dumps({"load": {"urls": {"http://127.0.0.1:5000/": url}}})
                    runs.append((task_id, "performance", "success", 0, metrics, None, f"e{number}", created))
    with sqlite3.connect(path) as db:
        db.executemany(
            "insert into tasks (task_id, model_slug, app_number, analysis_type, priority, tools, services, status,"
            " progress_percent, findings_count, severity_breakdown, created_at, updated_at, source_lines, verdicts)"
            " values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            tasks,
        )
        db.executemany(
            "insert into findings (task_id, service, tool, rule_id, severity, category, message, path, line, cwe,"
            " fingerprint, extra, issue_group) values (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            findings,
        )
        db.executemany(
            "insert into service_runs (task_id, service, status, findings_count, metrics, finding_summary, event_id,"
            " recorded_at) values (?,?,?,?,?,?,?,?)",
            runs,
        )
        db.execute("analyze")
    return len(findings)


async def measure(path: Path) -> list[tuple[float, float]]:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine)
    await asyncio.to_thread(fill, path)
    factory = sessions(engine)
    seconds = []
    for _ in range(REPEATS):
        started, cpu = time.perf_counter(), time.process_time()
        report = models_report(await report_rows(factory, Scope()), Scope())
        seconds.append((time.perf_counter() - started, time.process_time() - cpu))
        assert len(report.quality) == len(report.verdicts) == MODELS * len(TYPES)
    await engine.dispose()
    return seconds


def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as folder:
        seconds = asyncio.run(measure(Path(folder) / "report.db"))
    tasks = MODELS * APPS * len(TYPES)
    return [
        Row(
            case=f"report over {tasks:,} tasks, {tasks * FINDINGS_PER_TASK:,} findings",
            unit="s",
            baseline=GOAL_S,
            assay=statistics.median(wall for wall, _cpu in seconds),
            note=f"baseline column: the goal; wall/CPU s per run: {', '.join(f'{w:.2f}/{c:.2f}' for w, c in seconds)}",
        )
    ]
