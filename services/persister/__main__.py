"""Start the persister: `python -m services.persister` (settings from the environment, see shared/operations/config.py)."""

from __future__ import annotations

import asyncio
import sys

from nats.aio.client import Client

from services.persister.service import run
from shared.jetstream.lifecycle import run_service
from shared.operations.config import Settings
from shared.store.database import create_engine


async def persist(nc: Client, settings: Settings, stop: asyncio.Event) -> None:
    engine = create_engine(settings.database_url)
    try:
        await run(nc, engine, settings, stop)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    sys.exit(run_service("persister", persist, database=True))
