"""The pipeline benchmark's Celery baseline does Assay's work: one task through its HTTP endpoint's recording and
its worker's task function leaves the same rows (task, service run, tool, 5 findings) and the same complete
result folder with manifest as the persister writes. (A real SQLite file and folder; no timing is asserted.)"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import func, select

from services.persister.database import record_request
from shared.store.database import create_engine, migrate, sessions
from shared.store.models import FindingRow, ServiceRun, Task, ToolRunRow
from shared.wire.messages import AnalysisRequest
from shared.wire.tasks import TaskRef, new_task_id

celery_worker = pytest.importorskip(
    "benchmarks.celery_worker", reason="the bench extra (celery) is not installed"
)


async def _record_pending(database_url: str, request: AnalysisRequest) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        await record_request(sessions(engine), request, None)
    finally:
        await engine.dispose()


async def _rows(database_url: str, task_id: str) -> tuple[Task, dict[str, int]]:
    engine = create_engine(database_url)
    try:
        async with sessions(engine)() as session:
            task = await session.get(Task, task_id)
            assert task is not None
            counts = {
                model.__tablename__: int(
                    (
                        await session.execute(
                            select(func.count()).select_from(model).filter_by(task_id=task_id)
                        )
                    ).scalar_one()
                )
                for model in (ServiceRun, ToolRunRow, FindingRow)
            }
            return task, counts
    finally:
        await engine.dispose()


def test_worker_task_writes_the_rows_and_the_folder_the_persister_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'celery.db'}"
    results = tmp_path / "results"
    monkeypatch.setenv("ASSAY_DATABASE_URL", database_url)
    monkeypatch.setenv("ASSAY_RESULTS_DIR", str(results))
    monkeypatch.setattr(celery_worker, "_state", None)  # a fresh worker process
    ref = TaskRef(id=new_task_id(), model_slug="bench", app_number=1, analysis_type="static")
    request = AnalysisRequest(task=ref, tools=["ruff"])
    asyncio.run(_record_pending(database_url, request))

    celery_worker.analyze(msgspec.json.encode(request).decode())  # the task body, run in this process
    celery_worker._state.runner.close()

    task, counts = asyncio.run(_rows(database_url, ref.id))
    assert task.status == "completed" and task.findings_count == 5
    assert counts == {"service_runs": 1, "tool_runs": 1, "findings": 5}
    assert task.result_dir is not None
    folder = results / task.result_dir
    manifest = json.loads((folder / "manifest.json").read_text())
    listed = {entry["path"] for entry in manifest["files"]}
    assert f"bench_app1_{ref.id}.json" in listed and "consolidated.sarif.json" in listed
    primary = json.loads((folder / f"bench_app1_{ref.id}.json").read_text())
    assert primary["summary"]["total_findings"] == 5 and primary["results"]["tools_used"] == ["ruff"]


async def test_persistence_floor_measures_its_own_tasks_in_a_child_process() -> None:
    from benchmarks.persistence_floor import measure_in_child

    floor = await measure_in_child(5)

    assert floor.tasks == 5
    assert floor.user_ms > 0 and floor.system_ms >= 0 and floor.wall_ms > 0
    assert floor.cpu_ms == floor.user_ms + floor.system_ms
