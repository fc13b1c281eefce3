"""`GET /api/apps`, `GET /api/models`, enum refusals and the API docs page, over a real apps folder, a real SQLite
file and a served gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.jetstream.natsd import EmbeddedNats
from tests.support.gateway import (
    APP,
    MODEL,
    Gateway,
    gateway_for,
    gateway_settings,
    insert_task,
    migrate_database,
)


@pytest.fixture
async def gateway(tmp_path: Path, nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Gateway]:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url))
    backend = settings.apps_dir / MODEL / f"app{APP}" / "backend"
    (backend / "app.py").write_text("import os\n\n\nprint(os.getcwd())\n")
    frontend = settings.apps_dir / MODEL / f"app{APP}" / "frontend"
    frontend.mkdir()
    (frontend / "app.js").write_text("let a = 1;\n\nconsole.log(a);\n")
    (frontend / "node_modules" / "x").mkdir(parents=True)
    (frontend / "node_modules" / "x" / "index.js").write_text("ignored();\n")
    (settings.apps_dir / "other-model" / "app7").mkdir(parents=True)
    (settings.apps_dir / "other-model" / "not-an-app").mkdir()
    (settings.apps_dir / "Bad Slug" / "app1").mkdir(parents=True)
    async with gateway_for(settings) as running:
        yield running


async def test_apps_lists_every_app_with_its_size_per_language_and_latest_task_per_type(
    gateway: Gateway, database_url: str
) -> None:
    await insert_task(database_url, "task_00000000000a", status="failed")
    await insert_task(database_url, "task_00000000000c")  # the newer one

    response = await gateway.http.get("/api/apps")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 2
    first, second = body["apps"]
    assert (first["model_slug"], first["app_number"]) == (MODEL, APP)
    assert first["source_lines"] == {"javascript": 2, "python": 2}  # blank lines and node_modules not counted
    assert list(first["latest_tasks"]) == ["static"]
    assert first["latest_tasks"]["static"]["task_id"] == "task_00000000000c"
    assert first["latest_tasks"]["static"]["status"] == "completed"
    assert (second["model_slug"], second["app_number"], second["source_lines"]) == ("other-model", 7, {})
    assert second["latest_tasks"] == {}


async def test_models_counts_apps_and_tasks(gateway: Gateway, database_url: str) -> None:
    await insert_task(database_url, "task_00000000000b")
    await insert_task(database_url, "task_00000000000d")

    response = await gateway.http.get("/api/models")

    assert response.status_code == 200, response.text
    assert response.json()["models"] == [
        {"model_slug": MODEL, "apps": 1, "app_numbers": [APP], "tasks": 2},
        {"model_slug": "other-model", "apps": 1, "app_numbers": [7], "tasks": 0},
    ]


async def test_models_answers_503_when_the_database_has_no_tables(
    tmp_path: Path, nats_server: EmbeddedNats, database_url: str
) -> None:
    # Without tokens: with them, the token check is what would meet the missing tables first.
    settings = gateway_settings(tmp_path, nats_server.url, database_url, auth=False)
    async with gateway_for(settings) as unmigrated:
        response = await unmigrated.http.get("/api/models")

    assert response.status_code == 503
    assert response.json()["detail"].startswith("database unavailable: OperationalError")


@pytest.mark.parametrize(
    ("path", "params", "field", "allowed"),
    [
        (
            "/api/tasks",
            {"status": "done"},
            "status",
            "pending, running, completed, partial, failed, cancelled",
        ),
        ("/api/reports/models", {"analysis_type": "fast"}, "analysis_type", "security, static, dynamic"),
    ],
)
async def test_an_enum_refusal_lists_the_allowed_values(
    gateway: Gateway, path: str, params: dict[str, str], field: str, allowed: str
) -> None:
    response = await gateway.http.get(path, params=params)

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == field and f"allowed: {allowed}" in error["reason"]
    assert f"allowed: {allowed}" in response.json()["detail"]
