"""What the gateway holds while it runs: the NATS connection, the tasks bucket and the database engine.

They are opened by the application's lifespan and kept in `app.state.resources`, never in module globals, so
every test can run its own gateway against its own nats-server and database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import nats.errors
from litestar.datastructures import State
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.gateway.verified_tokens import VerifiedTokens
from shared.jetstream.connection import connect
from shared.jetstream.publishing import publish_patience
from shared.jetstream.streams import declare_streams, tasks_bucket
from shared.operations.config import Settings
from shared.operations.errors import ConfigError
from shared.store.database import create_engine, sessions

log = logging.getLogger(__name__)

# What a NATS call raises when the server is absent or unreachable: route handlers turn these into a 503.
NATS_ERRORS: tuple[type[BaseException], ...] = (nats.errors.Error, asyncio.TimeoutError, OSError)

# What a database call raises when the server is down or the schema is missing: answered with a 503. asyncpg
# lets a refused connection through as OSError; a stalled one ends in a timeout.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError)

# A publish or bucket write waits this long for the server before the request gets a 503.
JETSTREAM_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Resources:
    """The running gateway's connections, handed to route handlers as the `resources` dependency."""

    settings: Settings
    nats: Client
    js: JetStreamContext
    tasks: KeyValue  # `accepted.<id>` placeholders and `cancel.<id>` markers
    engine: AsyncEngine  # tasks read only (the persister writes them); tokens' last use and idempotency keys
    sessions: async_sessionmaker[AsyncSession]
    verified: VerifiedTokens = field(default_factory=lambda: VerifiedTokens(0))  # tokens checked a moment ago

    @property
    def publish_patience_s(self) -> float:
        """How long a write to JetStream is retried before the client gets a 503 (through a leader election on a
        cluster)."""
        return publish_patience(self.settings.jetstream)


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Connect to NATS (retrying until it answers), declare the streams, open the database engine."""
    if not settings.nats_url:
        raise ConfigError("ASSAY_NATS_URL is not set: start the stack with `assay up`, which provides one")
    nc = await connect(settings.nats_url, "gateway", settings.nats_creds)
    engine = create_engine(settings.database_url)
    try:
        js = nc.jetstream(timeout=JETSTREAM_TIMEOUT_S)
        await declare_streams(js, settings.jetstream)
        tasks = await tasks_bucket(js, settings.jetstream)
        yield Resources(
            settings=settings,
            nats=nc,
            js=js,
            tasks=tasks,
            engine=engine,
            sessions=sessions(engine),
            verified=VerifiedTokens(settings.token_cache_s),
        )
    finally:
        await engine.dispose()
        await _close(nc)


async def _close(nc: Client) -> None:
    # Drain flushes what is buffered; with the server gone it cannot, so do not wait for it long.
    if nc.is_closed:
        return
    try:
        await asyncio.wait_for(nc.drain(), 5)
    except Exception as error:  # noqa: BLE001 - closing anyway
        log.warning("NATS drain failed (%s); closing", error)
        await nc.close()


def provide_resources(state: State) -> Resources:
    """Dependency: the running gateway's resources."""
    resources: Resources = state.resources
    return resources
