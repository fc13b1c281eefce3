"""What the fault suite reads back after a run, from the three places a task leaves a trace: the database's rows,
the result folders on disk, and the terminal events on ASSAY_EVENTS. Read-only, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.jetstream.connection import connect
from shared.store.database import create_engine
from shared.store.models import FindingRow, ProcessedEvent, Task, ToolRunRow
from shared.wire import subjects
from shared.wire.messages import TERMINAL_STATUSES

# The terminal event kinds (a `partial` task ends with `completed`).
TERMINAL_KINDS = ("completed", "failed", "cancelled")
POLL_S = 0.5
# Five ack waits of the suite's stacks: redelivered work has come back by then, whatever the fault was.
STALL_S = 30.0


@dataclass(frozen=True)
class TaskRow:
    """The columns of a task row the suite compares."""

    task_id: str
    model_slug: str
    app_number: int
    status: str
    status_reason: str | None
    result_dir: str | None
    findings_count: int

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES and self.result_dir is not None


# TaskRow's columns, in its order
TASK_COLUMNS = (
    Task.task_id,
    Task.model_slug,
    Task.app_number,
    Task.status,
    Task.status_reason,
    Task.result_dir,
    Task.findings_count,
)


@dataclass
class Rows:
    """The database's side: every task row, and per task its finding rows, the findings its tool runs counted
    and the terminal events the persister applied."""

    tasks: dict[str, TaskRow] = field(default_factory=dict)
    finding_rows: dict[str, int] = field(default_factory=dict)
    tool_run_findings: dict[str, int] = field(default_factory=dict)
    terminal_applied: dict[str, int] = field(default_factory=dict)


async def _grouped(engine: AsyncEngine, query: Select[str, int]) -> dict[str, int]:
    async with engine.connect() as connection:
        return {task_id: int(count or 0) for task_id, count in (await connection.execute(query)).all()}


async def read_rows(database_url: str) -> Rows:
    """Every task's rows in the database at `database_url`."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            tasks = {row[0]: TaskRow(*row) for row in (await connection.execute(select(*TASK_COLUMNS))).all()}
        findings = await _grouped(
            engine, select(FindingRow.task_id, func.count()).group_by(FindingRow.task_id)
        )
        counted = await _grouped(
            engine,
            select(ToolRunRow.task_id, func.sum(ToolRunRow.findings_count)).group_by(ToolRunRow.task_id),
        )
        applied = await _grouped(
            engine,
            select(ProcessedEvent.task_id, func.count())
            .where(ProcessedEvent.kind.in_(TERMINAL_KINDS))
            .group_by(ProcessedEvent.task_id),
        )
        return Rows(tasks, findings, counted, applied)
    finally:
        await engine.dispose()


async def _terminal_ids(engine: AsyncEngine) -> set[str]:
    query = select(Task.task_id).where(Task.status.in_(TERMINAL_STATUSES), Task.result_dir.is_not(None))
    async with engine.connect() as connection:
        return {task_id for (task_id,) in (await connection.execute(query)).all()}


async def open_count(database_url: str, task_ids: Collection[str]) -> int:
    """How many of `task_ids` have not ended (no terminal row naming its folder) yet."""
    engine = create_engine(database_url)
    try:
        return len(set(task_ids) - await _terminal_ids(engine))
    finally:
        await engine.dispose()


async def wait_terminal(
    database_url: str, task_ids: Collection[str], timeout_s: float, stall_s: float = STALL_S
) -> float:
    """Poll the rows until every one of `task_ids` is terminal and names its folder, `timeout_s` passed, or none
    has ended for `stall_s` (work a fault lost for good does not keep the suite waiting); the seconds waited."""
    engine = create_engine(database_url)
    wanted = set(task_ids)
    started = moved = time.monotonic()
    left = len(wanted)
    try:
        while left and time.monotonic() - started < timeout_s and time.monotonic() - moved < stall_s:
            await asyncio.sleep(POLL_S)
            now_left = len(wanted - await _terminal_ids(engine))
            if now_left < left:
                left, moved = now_left, time.monotonic()
        return time.monotonic() - started
    finally:
        await engine.dispose()


def result_folders(results_dir: Path) -> dict[str, list[Path]]:
    """Every finished result folder under `results_dir` (`<model>/app<N>/task_<type>_<hex>_<stamp>`), by task id;
    the persister's scratch (`.tmp-…`, `.staging`) is not a result."""
    folders: dict[str, list[Path]] = defaultdict(list)
    for folder in results_dir.glob("*/app*/task_*"):
        if folder.is_dir():
            hex_id = folder.name.split("_")[2]
            folders[f"task_{hex_id}"].append(folder)
    return dict(folders)


async def terminal_events(nats_url: str, creds: str) -> dict[str, list[str]]:
    """The kinds of the terminal events ASSAY_EVENTS holds, per task, one entry per event (read as `admin`:
    the stream's subject counts)."""
    client = await connect(nats_url, "fault-suite", creds)
    try:
        js = client.jetstream()
        kinds: dict[str, list[str]] = defaultdict(list)
        for kind in TERMINAL_KINDS:
            info = await js.stream_info(
                subjects.EVENTS_STREAM, subjects_filter=subjects.event_subject("*", kind)
            )
            for subject, count in (info.state.subjects or {}).items():
                kinds[subject.split(".")[2]].extend([kind] * count)
        return dict(kinds)
    finally:
        await client.close()
