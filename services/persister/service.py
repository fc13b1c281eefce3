"""The persister wired together: schema, streams and consumers declared, then the consumer loop and the reaper
run until `stop` is set. `__main__` calls this; tests run it in-process as an asyncio task.
"""

from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client
from sqlalchemy.ext.asyncio import AsyncEngine

from services.persister.completion import PersisterContext
from services.persister.consumer import SOURCES, declare, flow
from services.persister.reaper import REAP_INTERVAL_S, run_reaper
from services.persister.sessions import persister_sessions
from shared.jetstream.consuming import consume
from shared.operations.config import Settings
from shared.store.database import migrate
from shared.telemetry.metrics import Watched, watch_jetstream

log = logging.getLogger(__name__)


async def run(
    nc: Client,
    engine: AsyncEngine,
    settings: Settings,
    stop: asyncio.Event,
    reap_interval_s: float = REAP_INTERVAL_S,
) -> None:
    """Run the persister on `nc` and `engine` until `stop` is set."""
    await migrate(engine)
    js = nc.jetstream()
    await declare(js, settings.ack_wait_s, settings.max_deliver, settings.jetstream)
    writes = persister_sessions(engine)
    ctx = PersisterContext(
        js=js,
        sessions=writes,
        results_root=settings.results_dir,
        max_deliver=settings.max_deliver,
        redelivery_margin_s=settings.redelivery_margin_s,
        ack_wait_s=settings.ack_wait_s,
        db_system=engine.dialect.name,
        write_limit_s=settings.results_write_limit_s,
    )
    loops = [asyncio.create_task(consume(flow(ctx, settings), stop), name="consumer")]
    watched = [Watched(source.stream, source.durable) for source in SOURCES]
    loops.append(asyncio.create_task(watch_jetstream(js, watched, stop, dlq=True), name="metrics"))
    loops.append(
        asyncio.create_task(
            run_reaper(ctx, settings.stale_task_s, stop, reap_interval_s, settings.pending_limit_s),
            name="reaper",
        )
    )
    log.info("persister running; results under %s", settings.results_dir)
    try:
        await asyncio.gather(*loops)
    finally:
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await asyncio.to_thread(writes.close)
