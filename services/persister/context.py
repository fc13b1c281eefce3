"""What the persister's handlers work with: the database, the results root, JetStream, and the limits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from nats.js import JetStreamContext

from services.persister.records import Sessions


@dataclass(frozen=True)
class PersisterContext:
    """Passed explicitly to every handler; nothing of it lives in module globals."""

    js: JetStreamContext
    sessions: Sessions
    results_root: Path
    max_deliver: int  # deliveries of one message before it goes to the DLQ
    ack_wait_s: float = 30.0  # long work sends in_progress() well within it
    db_system: str = "sqlite"  # OTel `db.system` of the engine (sqlite, postgresql)
    # Finishing a task (folder, then row) runs under this lock so the reaper and the event consumer of one process
    # never finish the same task twice at once.
    finishing: asyncio.Lock = field(default_factory=asyncio.Lock)
