"""Schema migrations that move data: an upgrade keeps what an earlier version left for tasks in flight, on SQLite
and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, select, text

from services.persister import staging
from services.persister.staging import StagedService
from shared.store.database import alembic_config, create_engine, migrate
from shared.store.models import ServiceRun
from tests.support.persister import service_result


def _upgrade_to(revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    return run


async def test_staged_files_of_live_tasks_move_into_their_service_runs(
    any_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "results"
    monkeypatch.setenv("ASSAY_RESULTS_DIR", str(results))
    engine = create_engine(any_database)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_to("0005"))
            for task_id, status in (("task_00000000live", "running"), ("task_0000000ended", "completed")):
                await connection.execute(
                    text(
                        "INSERT INTO tasks (task_id, model_slug, app_number, analysis_type, priority, tools,"
                        " services, status, progress_percent, findings_count, severity_breakdown, created_at,"
                        " updated_at) VALUES (:task_id, 'm', 1, 'static', 'normal', '[]', '[]', :status, 0, 0,"
                        " '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"task_id": task_id, "status": status},
                )
                await connection.execute(
                    text(
                        "INSERT INTO service_runs (task_id, service, status, findings_count, metrics, event_id,"
                        " recorded_at) VALUES (:task_id, 'static', 'success', 3, '{}', 'e1', CURRENT_TIMESTAMP)"
                    ),
                    {"task_id": task_id},
                )
        staged = StagedService(
            service="static", status="success", event_id="e1", result=service_result(count=3)
        )
        for task_id in ("task_00000000live", "task_0000000ended"):
            folder = results / ".staging" / task_id
            folder.mkdir(parents=True)
            (folder / "static.json").write_bytes(staging.encode(staged))

        await migrate(engine)

        async with engine.connect() as connection:
            query = select(ServiceRun.task_id, ServiceRun.staged_result).order_by(ServiceRun.task_id)
            rows = {task_id: data for task_id, data in (await connection.execute(query)).all()}
        assert rows["task_0000000ended"] is None  # its folder holds it already
        live = rows["task_00000000live"]
        assert live is not None and staging.decode(live) == staged
        assert (results / ".staging" / "task_00000000live" / "static.json").exists()  # nothing deleted
    finally:
        await engine.dispose()
