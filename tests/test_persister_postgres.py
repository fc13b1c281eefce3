"""The persister's happy path on PostgreSQL (asyncpg): same code, another dialect. Each run gets a fresh database
that is dropped afterwards (the `postgres_url` fixture, tests/support/postgres.py); without a reachable server the
test is skipped and says why."""

from __future__ import annotations

from pathlib import Path

from shared.jetstream.natsd import EmbeddedNats
from shared.results.findings import SEVERITIES
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
