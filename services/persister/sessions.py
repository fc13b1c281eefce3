"""Database sessions of the persister: reads from the pool, writes committed in groups.

The persister's handlers run concurrently, and each message's changes are one unit of work (a function of a
session). Committing each unit on its own costs a transaction, and on SQLite, which takes one writer at a time,
concurrent units would queue in its busy handler (sleeping up to 100 ms between tries). Instead one writer takes
every unit waiting, runs them one after another in ONE transaction and commits once; each caller's await returns
only after that commit, so a message is acknowledged only once its changes are durable. When a unit of a group
fails, the group is rolled back and each unit runs again in a transaction of its own, so only the failing one
fails. No timer: a unit that finds the writer idle is committed at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.persister.lookups import Sessions
from shared.database import sessions

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[T]]
ATTEMPTS = 3


async def one_transaction(factory: Sessions, work: Work[T]) -> T:
    """Run `work` in a transaction of its own; retried a few times when a concurrent writer got in the way.

    Two writers may insert the same task row at once (SQLite answers "database is locked", PostgreSQL a unique
    violation); running the whole unit again sees the other's row and takes the update path.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with factory() as session, session.begin():
                return await work(session)
        except (IntegrityError, OperationalError) as error:
            if attempt == ATTEMPTS:
                raise
            log.info("transaction retried after a conflict: %s", error.__class__.__name__)
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


class GroupCommit:
    """Sessions for reads (calling it), and `write` for units of work committed together."""

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self.factory = factory
        self._waiting: list[tuple[Work[Any], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None

    def __call__(self) -> AsyncSession:
        return self.factory()

    async def write(self, work: Work[T]) -> T:
        """Run `work` in the next group's transaction; returns its result once the group is committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups(), name="group commit")
        return await future

    async def _write_groups(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                async with self.factory() as session, session.begin():
                    results = [await work(session) for work, _ in group]
            except Exception:  # noqa: BLE001 - one unit failed: each on its own, so only that one fails
                for work, future in group:
                    await _settle(future, partial(one_transaction, self.factory, work))
                continue
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)


async def _settle(future: asyncio.Future[Any], run: Callable[[], Awaitable[Any]]) -> None:
    try:
        result = await run()
    except Exception as error:  # noqa: BLE001 - handed to the caller, whose message is retried
        if not future.done():
            future.set_exception(error)
        return
    if not future.done():
        future.set_result(result)


def persister_sessions(engine: AsyncEngine) -> GroupCommit:
    """The persister's sessions: reads from the pool, writes committed in groups."""
    return GroupCommit(sessions(engine))
