"""Database engine and schema migrations (Alembic), for any SQLAlchemy async URL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Every SQLite connection's settings (a `connect` event listener)."""
    # WAL lets the gateway read while the persister writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; for SQLite, the folder is created and WAL mode switched on."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


_INSERT_NEW: dict[tuple[str, str], sqlite.Insert | postgresql.Insert] = {}


def insert_new(session: AsyncSession | Session, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT of `table` rows that skips a row whose key exists (the dialect's ON CONFLICT DO NOTHING); built
    once per dialect and table, so that its compiled form is found in the cache without a new cache key."""
    dialect = session.get_bind().dialect.name
    statement = _INSERT_NEW.get((dialect, table.name))
    if statement is None:
        insert_of = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = _INSERT_NEW[(dialect, table.name)] = insert_of(table).on_conflict_do_nothing()
    return statement


def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: Connection | None = None) -> Config:
    # Imported here: only what migrates needs Alembic, and the gateway and most CLI commands start without it.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration (Alembic runs in a worker thread via run_sync)."""

    def upgrade(connection: Connection) -> None:
        from alembic import command  # here, not at the top: see alembic_config

        command.upgrade(alembic_config(connection), "head")

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)
