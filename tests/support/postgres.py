"""A fresh PostgreSQL database per test on the test server (`ASSAY_TEST_POSTGRES_URL`), dropped afterwards; the
test is skipped, saying why, when no server answers."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import pytest

POSTGRES_URL = os.environ.get("ASSAY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty database on the test server, dropped at the end."""
    asyncpg = pytest.importorskip("asyncpg")
    base, _, admin_db = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://").rpartition("/")
    try:
        admin = await asyncpg.connect(f"{base}/{admin_db}", timeout=3)
    except (OSError, asyncpg.PostgresError) as error:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {error}")
    name = f"assay_persister_{secrets.token_hex(4)}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.PostgresError as error:
        await admin.close()
        pytest.skip(f"cannot create a test database on {POSTGRES_URL}: {error}")
    try:
        yield f"postgresql+asyncpg://{base.removeprefix('postgresql://')}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
