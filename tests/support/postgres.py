"""A fresh PostgreSQL database per test (so xdist workers never share one) on the test server
(`ASSAY_TEST_POSTGRES_URL`), dropped afterwards; the test is skipped, saying why, when no server answers.
`postgres_url` for async tests, `fresh_postgres_database` for sync ones (the fault suite drives its stack from plain
threads)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

POSTGRES_URL = os.environ.get("ASSAY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _server() -> tuple[str, str]:
    """The server's URL without a database (as asyncpg spells it), and the database to connect to for admin."""
    base, _, admin_db = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://").rpartition("/")
    return base, admin_db


async def _admin() -> Any:
    asyncpg = pytest.importorskip("asyncpg")
    base, admin_db = _server()
    try:
        return await asyncpg.connect(f"{base}/{admin_db}", timeout=3)
    except (OSError, asyncpg.PostgresError) as error:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {error}")


async def _create(prefix: str) -> tuple[str, str]:
    """A new empty database named `<prefix>_<xdist worker>_<random>`: (its name, its SQLAlchemy URL). The worker's
    name in it tells whose a database left behind by a killed run is; the random part keeps tests apart."""
    asyncpg = pytest.importorskip("asyncpg")
    admin = await _admin()
    name = f"{prefix}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{secrets.token_hex(4)}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.PostgresError as error:
        pytest.skip(f"cannot create a test database on {POSTGRES_URL}: {error}")
    finally:
        await admin.close()
    base, _ = _server()
    return name, f"postgresql+asyncpg://{base.removeprefix('postgresql://')}/{name}"


async def _drop(name: str) -> None:
    admin = await _admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty database on the test server, dropped at the end."""
    name, url = await _create("assay_persister")
    try:
        yield url
    finally:
        await _drop(name)


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """`postgres_url` for a sync caller: the URL of a fresh database, dropped on the way out."""
    name, url = asyncio.run(_create(prefix))
    try:
        yield url
    finally:
        asyncio.run(_drop(name))
