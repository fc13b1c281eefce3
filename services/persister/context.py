"""What the persister's handlers work with: the database, the results root, JetStream, and the limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from nats.js import JetStreamContext

from services.persister.records import Sessions


class TaskLocks:
    """One asyncio lock per task id, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, task_id: str) -> AsyncIterator[None]:
        """Hold the task's lock for the duration of the block."""
        lock, users = self._locks.get(task_id, (asyncio.Lock(), 0))
        self._locks[task_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[task_id]
            if users == 1:
                del self._locks[task_id]
            else:
                self._locks[task_id] = (lock, users - 1)


@dataclass(frozen=True)
class PersisterContext:
    """Passed explicitly to every handler; nothing of it lives in module globals."""

    js: JetStreamContext
    sessions: Sessions
    results_root: Path
    max_deliver: int  # deliveries of one message before it goes to the DLQ
    ack_wait_s: float = 30.0  # long work sends in_progress() well within it
    db_system: str = "sqlite"  # OTel `db.system` of the engine (sqlite, postgresql)
    # Finishing a task (folder, then row) runs under its task's lock so the reaper and the event consumer of one
    # process never finish the same task twice at once; different tasks finish concurrently.
    finishing: TaskLocks = field(default_factory=lambda: TaskLocks())
