"""`assay prune`: tasks that ended before a cutoff leave the database and the results disk together.

The order makes a crash at any point harmless and visible. For each task:
1. its result folder is renamed to `<results>/.prune/<task_id>` (one rename: the journal of this prune);
2. its rows go in one transaction (findings, tool runs, service runs, processed events, the task);
3. the renamed folder is removed.
A crash after 1 leaves a row whose folder waits under `.prune/`, after 2 a folder there without a row: both are
what `assay fsck` reports as an interrupted prune, and the next prune (or `fsck --repair`) completes it. So no row
ever points at a folder that vanished unexplained, and no folder outlives its row unaccounted for.
Only terminal tasks are pruned: a pending or running task is never touched.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
from sqlalchemy import Table, delete, func, select

from services.persister.folders import fsync_folder
from services.persister.sessions import Sessions
from services.persister.upkeep.integrity import PRUNING, folder_of, pruning_entries
from shared.store.models import FindingRow, IdempotencyKey, ProcessedEvent, ServiceRun, Task, ToolRunRow
from shared.store.paths import UnsafePathError
from shared.wire.messages import TERMINAL_STATUSES, as_utc, utcnow

# Child rows first, the task row last (the same order a database without cascading deletes needs).
TABLES: tuple[tuple[str, Table], ...] = tuple(
    (model.__tablename__, model.__table__)  # type: ignore[misc]
    for model in (FindingRow, ToolRunRow, ServiceRun, ProcessedEvent, Task)
)
COUNT_CHUNK = 500  # task ids per IN (…) when counting their rows


class PrunedTask(msgspec.Struct, frozen=True, kw_only=True):
    """One task a prune removed (or, with --dry-run, would remove)."""

    task_id: str
    status: str
    finished_at: datetime | None
    result_dir: str | None
    rows: dict[str, int]  # table → rows of the task
    folder: bool  # whether it had a folder on disk


class PruneReport(msgspec.Struct, kw_only=True):
    """What `assay prune` did."""

    cutoff: datetime
    dry_run: bool
    tasks: list[PrunedTask] = []
    completed_interrupted: list[str] = []  # task ids whose earlier, interrupted prune this one finished
    idempotency_keys: int = 0  # expired keys removed


@dataclass(frozen=True)
class _Candidate:
    task_id: str
    status: str
    finished_at: datetime | None
    result_dir: str | None
    rows: dict[str, int] = field(default_factory=dict)


async def _candidates(sessions: Sessions, cutoff: datetime) -> list[_Candidate]:
    ended = func.coalesce(Task.finished_at, Task.updated_at)
    query = (
        select(Task.task_id, Task.status, Task.finished_at, Task.result_dir)
        .where(Task.status.in_(TERMINAL_STATUSES), ended < cutoff)
        .order_by(ended)
    )
    async with sessions() as session:
        found = [_Candidate(*row) for row in (await session.execute(query)).all()]
        for start in range(0, len(found), COUNT_CHUNK):
            chunk = {candidate.task_id: candidate for candidate in found[start : start + COUNT_CHUNK]}
            for name, table in TABLES:
                counts = (
                    select(table.c.task_id, func.count())
                    .where(table.c.task_id.in_(chunk))
                    .group_by(table.c.task_id)
                )
                rows: dict[str, int] = dict((await session.execute(counts)).tuples().all())
                for task_id, candidate in chunk.items():
                    candidate.rows[name] = int(rows.get(task_id, 0))
    return found


async def _delete_rows(sessions: Sessions, task_id: str) -> None:
    async with sessions() as session, session.begin():
        for _name, table in TABLES:
            await session.execute(delete(table).where(table.c.task_id == task_id))


def _move_aside(results_root: Path, task_id: str, result_dir: str | None) -> bool:
    """Step 1: the task's folder renamed into the journal; False when it had none on disk."""
    if result_dir is None:
        return False
    try:
        folder = folder_of(results_root, result_dir)
    except UnsafePathError:
        return False  # a row naming a path outside the root names no folder of ours
    if not folder.is_dir():
        return False
    journal = results_root / PRUNING
    journal.mkdir(exist_ok=True)
    os.rename(folder, journal / task_id)
    fsync_folder(journal)
    fsync_folder(folder.parent)
    return True


def _remove(results_root: Path, task_id: str) -> None:
    """Step 3: the journal entry of the task."""
    shutil.rmtree(results_root / PRUNING / task_id, ignore_errors=True)


async def complete_interrupted(sessions: Sessions, results_root: Path, task_id: str) -> None:
    """Finish a prune that stopped after step 1 or 2: the rows (if still there), then the folder."""
    await _delete_rows(sessions, task_id)
    await asyncio.to_thread(_remove, results_root, task_id)


async def _expired_keys(sessions: Sessions, ttl_s: float, dry_run: bool) -> int:
    expired = IdempotencyKey.created_at < utcnow() - timedelta(seconds=ttl_s)
    async with sessions() as session, session.begin():
        if dry_run:
            return int(
                await session.scalar(select(func.count()).select_from(IdempotencyKey).where(expired)) or 0
            )
        result = await session.execute(delete(IdempotencyKey).where(expired))
        return int(result.rowcount)  # type: ignore[attr-defined]


async def prune(
    sessions: Sessions, results_root: Path, older_than: timedelta, idempotency_ttl_s: float, dry_run: bool
) -> PruneReport:
    """Remove every task that ended more than `older_than` ago, rows and folder together (see the module)."""
    cutoff = utcnow() - older_than
    report = PruneReport(cutoff=cutoff, dry_run=dry_run)
    if not dry_run:
        for task_id in await asyncio.to_thread(pruning_entries, results_root):
            await complete_interrupted(sessions, results_root, task_id)
            report.completed_interrupted.append(task_id)
    for candidate in await _candidates(sessions, cutoff):
        if dry_run:
            folder = await asyncio.to_thread(_has_folder, results_root, candidate.result_dir)
        else:
            folder = await asyncio.to_thread(
                _move_aside, results_root, candidate.task_id, candidate.result_dir
            )
            await complete_interrupted(sessions, results_root, candidate.task_id)
        report.tasks.append(
            PrunedTask(
                task_id=candidate.task_id,
                status=candidate.status,
                finished_at=as_utc(candidate.finished_at),
                result_dir=candidate.result_dir,
                rows=candidate.rows,
                folder=folder,
            )
        )
    report.idempotency_keys = await _expired_keys(sessions, idempotency_ttl_s, dry_run)
    return report


def _has_folder(results_root: Path, result_dir: str | None) -> bool:
    if result_dir is None:
        return False
    try:
        return folder_of(results_root, result_dir).is_dir()
    except UnsafePathError:
        return False
