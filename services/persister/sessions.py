"""Database sessions for the persister's concurrent handlers.

SQLite takes one writer at a time. Handlers that open transactions at once would queue inside SQLite's busy
handler, which sleeps in steps of up to 100 ms between tries and leaves the process idle; handing sessions out one
at a time from an asyncio lock queues them here instead, where the next one starts the moment the previous ends.
Servers that take concurrent writers (PostgreSQL) get the session factory unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.persister.records import Sessions
from shared.database import sessions


class OneAtATime:
    """Sessions of `factory`, one open at a time."""

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self.factory = factory
        self.lock = asyncio.Lock()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        async with self.lock, self.factory() as session:
            yield session


def persister_sessions(engine: AsyncEngine) -> Sessions:
    """The persister's sessions: one at a time on SQLite, from the pool elsewhere."""
    factory = sessions(engine)
    return OneAtATime(factory) if engine.dialect.name == "sqlite" else factory
