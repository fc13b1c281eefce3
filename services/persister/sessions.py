"""Database sessions of the persister: reads from the pool, writes committed in groups.

The persister's handlers run concurrently, and each message's changes are one unit of work (a plain function of a
synchronous session). Committing each unit on its own costs a transaction, and on SQLite, which takes one writer at
a time, concurrent units would queue in its busy handler (sleeping up to 100 ms between tries). Instead one writer
takes every unit waiting, runs them one after another in ONE transaction and commits once; each caller's await
returns only after that commit, so a message is acknowledged only once its changes are durable. When a unit of a
group fails, the group is rolled back and each unit runs again in a transaction of its own, so only the failing one
fails. No timer: a unit that finds the writer idle is committed at once.

Units are synchronous so that a whole group costs one hand-off between threads, not several per statement: on
SQLite the group runs in one writer thread on a connection of its own (the async driver, aiosqlite, hands every
cursor, execute, fetch and close to its thread and back, about four times the CPU of the statement itself); on a
server database the same units run through the async driver with `run_sync`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from shared.store.database import sessions, sqlite_pragmas

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[Session], T]
ATTEMPTS = 3

# An async_sessionmaker, or the persister's group commit (`GroupCommit`), which is one too.
Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def _retried(run: Callable[[], Awaitable[T]]) -> T:
    """`run` (one transaction), retried a few times when a concurrent writer got in the way.

    Two writers may insert the same task row at once (SQLite answers "database is locked", PostgreSQL a unique
    violation); running the whole unit again sees the other's row and takes the update path.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await run()
        except (IntegrityError, OperationalError) as error:
            if attempt == ATTEMPTS:
                raise
            log.info("transaction retried after a conflict: %s", error.__class__.__name__)
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


async def one_transaction(factory: Sessions, work: Work[T]) -> T:
    """Run `work` in a transaction of its own (retried on a conflict, see `_retried`)."""

    async def run() -> T:
        async with factory() as session, session.begin():
            return await session.run_sync(work)

    return await _retried(run)


def _units(session: Session, group: list[Work[Any]]) -> list[Any]:
    """The units of a group, one after another in `session`'s transaction. Units mix ORM objects and plain UPDATEs
    of the same tables: each unit's changes are flushed before the next starts, and the next reads the rows afresh
    (no object is kept across units)."""
    results = []
    for work in group:
        results.append(work(session))
        session.flush()
        session.expunge_all()
    return results


class GroupCommit:
    """Sessions for reads (calling it), and `write` for units of work committed together."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.factory = sessions(engine)
        self._waiting: list[tuple[Work[Any], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None
        # SQLite: a synchronous engine on the same file, used only by one thread (its connections stay there).
        self._sync: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            self._sync = create_engine(engine.url.set(drivername="sqlite"))
            event.listen(self._sync, "connect", sqlite_pragmas)
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="persister-writes")

    def __call__(self) -> AsyncSession:
        return self.factory()

    async def write(self, work: Work[T]) -> T:
        """Run `work` in the next group's transaction; returns its result once the group is committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups(), name="group commit")
        return await future

    async def _commit(self, group: list[Work[Any]]) -> list[Any]:
        """The group's units in one transaction, committed."""
        if self._sync is None or self._thread is None:
            async with self.factory() as session, session.begin():
                return await session.run_sync(_units, group)
        sync = self._sync

        def run() -> list[Any]:
            with Session(sync, expire_on_commit=False) as session, session.begin():
                return _units(session, group)

        return await asyncio.get_running_loop().run_in_executor(self._thread, run)

    async def _write_groups(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                results = await self._commit([work for work, _ in group])
            except Exception:  # noqa: BLE001 - one unit failed: each on its own, so only that one fails
                for work, future in group:
                    await _settle(future, self._commit, work)
                continue
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)

    def close(self) -> None:
        """Release the writer thread and its connections (the async engine is disposed by its owner)."""
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        if self._sync is not None:
            self._sync.dispose()


async def _settle(
    future: asyncio.Future[Any], commit: Callable[[list[Work[Any]]], Awaitable[list[Any]]], work: Work[Any]
) -> None:
    """Run one unit of a failed group in a transaction of its own, retried on a conflict."""
    try:
        (result,) = await _retried(lambda: commit([work]))
    except Exception as error:  # noqa: BLE001 - handed to the caller, whose message is retried
        if not future.done():
            future.set_exception(error)
        return
    if not future.done():
        future.set_result(result)


def persister_sessions(engine: AsyncEngine) -> GroupCommit:
    """The persister's sessions: reads from the pool, writes committed in groups."""
    return GroupCommit(engine)


async def transaction(sessions: Sessions, work: Work[T]) -> T:
    """Run `work` in one transaction: the persister's group commit when `sessions` is one, else on its own."""
    if isinstance(sessions, GroupCommit):
        return await sessions.write(work)
    return await one_transaction(sessions, work)
