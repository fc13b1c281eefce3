"""Finding writes: persisting one service's N findings into a SQLite file through SQLAlchemy.

Assay's figure is the persister's own write path, `services.persister.database.record_service`: one transaction
that updates the task row, replaces the service's rows and inserts every finding with one executemany. The
baseline is what Assay's predecessor did: one INSERT and one commit per finding through the same kind of engine
(`shared.store.database.create_engine`, WAL, synchronous=NORMAL). The baseline's task row is created before its clock
starts, so Assay's figure carries work the baseline's does not. Each side writes into its own freshly migrated
file in a temporary folder. Figures are rows per second, the median of up to three repeats (each with a new
task) within a time budget, so the slow baseline at N=10 000 may run only once; the table says how many ran.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from msgspec.structs import replace
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.common import Row, service_event
from services.persister.database import record_pending, record_service
from services.persister.sessions import Sessions
from shared.results.findings import Finding
from shared.store.database import create_engine, migrate, sessions
from shared.store.models import FindingRow
from shared.wire.messages import ServiceFinished, new_event_id

SIZES = (1_000, 10_000)
REPEATS = 3
BUDGET_S = 8.0  # per side and size: no further repeat starts once this is spent (at least one runs)


def finding_row(task_id: str, service: str, finding: Finding) -> dict[str, Any]:
    """The predecessor's conversion of one finding into its row."""
    return {
        "task_id": task_id,
        "service": service,
        "tool": finding.tool,
        "rule_id": finding.rule_id,
        "severity": finding.severity,
        "category": finding.category,
        "message": finding.message,
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
        "end_line": finding.end_line,
        "cwe": finding.cwe,
        "help_url": finding.help_url,
        "fingerprint": finding.fingerprint,
        "extra": dict(finding.extra),
    }


async def write_per_finding(engine: AsyncEngine, event: ServiceFinished) -> None:
    """The baseline: every finding its own INSERT and its own commit."""
    assert event.result is not None
    for finding in event.result.findings:
        async with engine.begin() as connection:
            await connection.execute(insert(FindingRow), finding_row(event.task.id, event.service, finding))


async def _count(sessions_: Sessions, task_id: str) -> int:
    async with sessions_() as session:
        query = select(func.count()).select_from(FindingRow).where(FindingRow.task_id == task_id)
        return int((await session.execute(query)).scalar_one())


async def _rows_per_s(path: Path, template: ServiceFinished, assay: bool) -> tuple[float, int]:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate(engine)
        sessions_ = sessions(engine)
        count = len(template.result.findings) if template.result else 0
        samples: list[float] = []
        deadline = time.perf_counter() + BUDGET_S
        for repeat in range(REPEATS):
            if samples and time.perf_counter() > deadline:
                break
            event = replace(
                template,
                task=replace(template.task, id=f"task_{repeat:012x}"),
                event_id=new_event_id(),
            )
            if not assay:
                await record_pending(sessions_, event)  # the row the findings refer to; not timed
            started = time.perf_counter_ns()
            if assay:
                await record_service(sessions_, event, event.result, None)
            else:
                await write_per_finding(engine, event)
            elapsed_s = (time.perf_counter_ns() - started) / 1e9
            if await _count(sessions_, event.task.id) != count:
                raise RuntimeError(f"{path.name}: the findings were not all written")
            samples.append(count / elapsed_s)
        return statistics.median(samples), len(samples)
    finally:
        await engine.dispose()


async def _measure(folder: Path) -> list[Row]:
    rows = []
    for count in SIZES:
        template = service_event(count)
        baseline, base_runs = await _rows_per_s(folder / f"baseline-{count}.db", template, assay=False)
        assay, assay_runs = await _rows_per_s(folder / f"assay-{count}.db", template, assay=True)
        note = f"median of {base_runs} / {assay_runs} runs"
        rows.append(Row(f"N={count:,} findings", "rows/s", baseline, assay, higher_is_better=True, note=note))
    return rows


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as folder:
        return asyncio.run(_measure(Path(folder)))
