"""Batches over a served gateway, a real nats-server, a real SQLite file and the real persister (in-process):
queuing, progress per status and per model, the SSE stream, cancel, and `assay batch`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from shared.jetstream.natsd import EmbeddedNats
from shared.store.database import create_engine, sessions
from shared.store.models import Task
from shared.wire.messages import decode_request
from shared.wire.subjects import REQUESTS_STREAM, cancel_key, request_subject
from tests.support.gateway import MODEL, Gateway, gateway_for, gateway_settings, migrate_database
from tests.support.persister import Harness, eventually, running_persister

REPO = Path(__file__).resolve().parent.parent
OTHER = "other-model"


@pytest.fixture
async def persister(tmp_path: Path, nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Harness]:
    await migrate_database(database_url)
    async with running_persister(nats_server.url, database_url, tmp_path / "persister") as harness:
        yield harness


@pytest.fixture
async def gateway(tmp_path: Path, nats_server: EmbeddedNats, persister: Harness) -> AsyncIterator[Gateway]:
    settings = gateway_settings(tmp_path, nats_server.url, persister.settings.database_url)
    for number in (1, 2):
        (settings.apps_dir / OTHER / f"app{number}").mkdir(parents=True)
    (settings.apps_dir / OTHER / "app1" / "app.py").write_text("a = 1\n\nb = 2\n")
    async with gateway_for(settings) as running:
        yield running


async def set_status(database_url: str, status: str, *task_ids: str) -> None:
    engine = create_engine(database_url)
    async with sessions(engine)() as session, session.begin():
        await session.execute(update(Task).where(Task.task_id.in_(task_ids)).values(status=status))
    await engine.dispose()


async def recorded(persister: Harness, task_ids: list[str]) -> None:
    async def all_there() -> bool:
        return all([await persister.task(task_id) is not None for task_id in task_ids])

    await eventually(all_there, 20, "the persister did not record every task of the batch")


async def recorded_batch_of_other(gateway: Gateway, persister: Harness) -> dict[str, Any]:
    """A batch of the other model's two apps, once the persister has recorded its tasks."""
    response = await gateway.http.post("/api/batches", json={"models": [OTHER], "analysis_types": ["static"]})
    body: dict[str, Any] = response.json()
    await recorded(persister, body["task_ids"])
    return body


async def test_a_batch_queues_one_task_per_app_and_type_with_its_batch_id(
    gateway: Gateway, persister: Harness
) -> None:
    response = await gateway.http.post(
        "/api/batches",
        json={"models": [MODEL, OTHER], "apps": [1, 2], "analysis_types": ["static", "security"]},
    )

    assert response.status_code == 202, response.text
    body = response.json()
    batch_id = body["batch_id"]
    assert response.headers["location"] == f"/api/batches/{batch_id}"
    assert body["missing"] == [f"{MODEL}/app2"]
    planned = {(task["model_slug"], task["app_number"], task["analysis_type"]) for task in body["tasks"]}
    assert planned == {
        (m, a, t) for m, a in ((MODEL, 1), (OTHER, 1), (OTHER, 2)) for t in ("static", "security")
    }
    assert len(body["task_ids"]) == 6 == len(set(body["task_ids"]))
    assert (await gateway.js.stream_info(REQUESTS_STREAM)).state.messages == 6
    data = (await gateway.js.get_last_msg(REQUESTS_STREAM, request_subject("normal"))).data
    assert data is not None
    last = decode_request(data)
    assert last.batch_id == batch_id and last.task.id in body["task_ids"]

    await recorded(persister, body["task_ids"])
    rows = [await persister.task(task_id) for task_id in body["task_ids"]]
    assert {row.batch_id for row in rows if row is not None} == {batch_id}
    sizes = {(row.model_slug, row.app_number): row.source_lines for row in rows if row is not None}
    assert sizes == {(MODEL, 1): 0, (OTHER, 1): 2, (OTHER, 2): 0}  # non-blank lines when queued

    await set_status(gateway.settings.database_url, "completed", *body["task_ids"][:2])
    await set_status(gateway.settings.database_url, "running", body["task_ids"][2])
    progress = (await gateway.http.get(f"/api/batches/{batch_id}")).json()

    assert (progress["total"], progress["done"], progress["finished"]) == (6, 2, False)
    assert progress["by_status"] == {
        "pending": 3, "running": 1, "completed": 2, "partial": 0, "failed": 0, "cancelled": 0
    }  # fmt: skip
    assert sum(sum(counts.values()) for counts in progress["by_model"].values()) == 6
    assert sum(counts["pending"] + counts["running"] for counts in progress["by_model"].values()) == 4
    assert progress["percent"] == pytest.approx(33.3)


@pytest.mark.parametrize(
    ("body", "status", "field", "says"),
    [
        (
            {"models": ["nobody"], "analysis_types": ["static"]},
            404,
            "models",
            "no apps under the apps root for: nobody",
        ),
        (
            {"models": [MODEL], "apps": [9], "analysis_types": ["static"]},
            404,
            "apps",
            f"missing: {MODEL}/app9",
        ),
        (
            {"analysis_types": ["static"], "tools": ["nmap"]},
            422,
            "tools",
            "unknown for analysis type 'static': nmap",
        ),
        ({"analysis_types": []}, 422, "analysis_types", "length"),
        (
            {"analysis_types": ["fast"]},
            422,
            "analysis_types",
            "allowed: security, static, dynamic, performance, ai",
        ),
    ],
)
async def test_a_bad_batch_is_refused_naming_the_field_and_queues_nothing(
    gateway: Gateway, body: dict[str, object], status: int, field: str, says: str
) -> None:
    response = await gateway.http.post("/api/batches", json=body)

    assert response.status_code == status, response.text
    assert field in response.json()["detail"] and says in response.text
    assert (await gateway.js.stream_info(REQUESTS_STREAM)).state.messages == 0


async def test_the_event_stream_numbers_each_change_and_ends_when_every_task_has_ended(
    gateway: Gateway, persister: Harness
) -> None:
    body = await recorded_batch_of_other(gateway, persister)
    frames: list[dict[str, str]] = []

    async def read() -> None:
        async with gateway.http.stream("GET", f"/api/batches/{body['batch_id']}/events") as stream:
            frame: dict[str, str] = {}
            async for line in stream.aiter_lines():
                if not line:
                    frames.append(frame)
                    frame = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    frame[name] = value

    reader = asyncio.create_task(read())
    await eventually(lambda_frames(frames, 1), 10, "no first frame")
    await set_status(gateway.settings.database_url, "completed", body["task_ids"][0])
    await eventually(lambda_frames(frames, 2), 10, "no frame for the change")
    await set_status(gateway.settings.database_url, "failed", body["task_ids"][1])
    await asyncio.wait_for(reader, 10)

    assert [frame["id"] for frame in frames] == ["1", "2", "3"]
    assert [frame["event"] for frame in frames] == ["progress", "progress", "finished"]
    assert [json.loads(frame["data"])["done"] for frame in frames] == [0, 1, 2]


def lambda_frames(frames: list[dict[str, str]], count: int) -> Callable[[], Awaitable[bool]]:
    async def enough() -> bool:
        return len(frames) >= count

    return enough


async def test_cancel_asks_every_unfinished_task_to_stop_then_409(
    gateway: Gateway, persister: Harness
) -> None:
    body = await recorded_batch_of_other(gateway, persister)
    first, second = body["task_ids"]
    await set_status(gateway.settings.database_url, "completed", first)

    response = await gateway.http.post(f"/api/batches/{body['batch_id']}/cancel")

    assert response.status_code == 202, response.text
    assert response.json() == {"batch_id": body["batch_id"], "cancelling": [second], "already_ended": 1}
    assert (await gateway.tasks.get(cancel_key(second))).value
    await set_status(gateway.settings.database_url, "cancelled", second)
    again = await gateway.http.post(f"/api/batches/{body['batch_id']}/cancel")
    assert again.status_code == 409 and "already ended" in again.json()["detail"]
    assert (await gateway.http.get("/api/batches/batch_000000000000")).status_code == 404


async def test_assay_batch_queues_and_follows_until_every_task_ended(
    gateway: Gateway, persister: Harness
) -> None:
    env = {**os.environ, "ASSAY_GATEWAY_URL": gateway.url, "ASSAY_TOKEN": gateway.token or ""}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "batch", "--models", OTHER, "--apps", "all", "--type", "static",
        "--wait", cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    batch_id = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
    progress = (await gateway.http.get(f"/api/batches/{batch_id}")).json()
    task_ids = [task["task_id"] for task in progress["tasks"]]
    await recorded(persister, task_ids)
    await set_status(gateway.settings.database_url, "completed", *task_ids)
    _out, err = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 0, err
    text = err.decode()
    assert "2 tasks queued" in text
    assert f"{batch_id}: 2/2 done (100%)" in text
    assert any(line.split()[:4] == [OTHER, "0", "0", "2"] for line in text.splitlines())
