"""When a task counts as persisted, the same way for both systems: its row is terminal and names its result folder
(the persister sets both in one transaction, after the folder is renamed into place), and the time is the row's
`updated_at` of that transaction. The benchmark polls the rows, read-only, until every task it submitted is
persisted, nothing has moved for a while, or its time is up: every wait is bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.store.database import create_engine
from shared.store.models import Task

POLL_S = 1.0


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        query = select(func.count()).select_from(Task).where(Task.result_dir.is_not(None))
        return int((await connection.execute(query)).scalar_one())


async def _times(engine: AsyncEngine, task_ids: Collection[str]) -> dict[str, float]:
    async with engine.connect() as connection:
        query = select(Task.task_id, Task.updated_at).where(Task.result_dir.is_not(None))
        rows = (await connection.execute(query)).all()
    wanted = set(task_ids)
    return {task_id: _epoch(updated_at) for task_id, updated_at in rows if task_id in wanted}


async def wait_persisted(
    database_url: str, task_ids: Collection[str], already: int, timeout_s: float, stall_s: float
) -> dict[str, float]:
    """Persisted time (epoch seconds) of each of `task_ids` persisted before the wait ended.

    `already`: tasks persisted in this database before these were submitted. The wait ends when all are in, after
    `timeout_s`, or when no task was persisted for `stall_s`.
    """
    engine = create_engine(database_url)
    try:
        deadline = time.monotonic() + timeout_s
        last_count, last_move = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = await _count(engine) - already
            if count >= len(task_ids):
                break
            if count != last_count:
                last_count, last_move = count, time.monotonic()
            elif time.monotonic() - last_move > stall_s:
                break
            await asyncio.sleep(POLL_S)
        return await _times(engine, task_ids)
    finally:
        await engine.dispose()


@asynccontextmanager
async def persisted_counter(database_url: str) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """How many tasks of this database are persisted (terminal, folder named), asked as often as the caller likes
    on one engine, closed when the block ends."""
    engine = create_engine(database_url)
    try:
        yield lambda: _count(engine)
    finally:
        await engine.dispose()


async def persisted_count(database_url: str) -> int:
    """How many tasks of this database are persisted, asked once."""
    async with persisted_counter(database_url) as persisted:
        return await persisted()
