"""The persister's happy path on PostgreSQL (asyncpg): same code, another dialect. Each run gets a fresh database
that is dropped afterwards; without a reachable server the test is skipped and says why."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.findings import SEVERITIES
from shared.natsd import EmbeddedNats
from tests.support.persister import (
    APP,
    MODEL,
    files_under,
    publish_scenario,
    read_json,
    result_folder,
    running_persister,
    scenario,
)

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


async def test_happy_path_on_postgresql(nats_server: EmbeddedNats, postgres_url: str, tmp_path: Path) -> None:
    async with running_persister(nats_server.url, postgres_url, tmp_path) as harness:
        assert harness.engine.dialect.name == "postgresql"
        case = scenario()
        task_id = case.request.task.id
        await publish_scenario(harness, case)
        # Delivered twice more beyond the duplicate window: still one row set.
        await harness.publish_event(case.service, case.parent, dedup=False)
        await harness.publish_event(case.completed, case.parent, dedup=False)

        task = await harness.wait_status(task_id, "completed")
        await harness.drained()
        assert task.trace_id == case.trace_id
        assert task.findings_count == 250
        assert task.severity_breakdown == {level: 50 for level in SEVERITIES}
        assert await harness.counts(task_id) == {"service_runs": 1, "tool_runs": 3, "findings": 250}
        folder = result_folder(harness, task)
        primary = f"{MODEL}_app{APP}_{task_id}.json"
        assert files_under(folder) == {
            primary,
            "services/static.json",
            "consolidated.sarif.json",
            "manifest.json",
        }
        assert len(read_json(folder / primary)["results"]["findings"]) == 250
        assert len(list(folder.parent.iterdir())) == 1
