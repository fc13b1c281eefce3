"""The gateway's HTTP API, served for real by uvicorn on a loopback port, against a real nats-server and a real
SQLite file: accepting, refusing, looking up, cancelling, readiness and the OpenAPI document.

The harness lives in tests/support/gateway.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.js.errors import NotFoundError
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import update

from shared.jetstream.natsd import EmbeddedNats
from shared.store.database import create_engine
from shared.store.models import Task
from shared.wire.messages import decode_cancel, decode_request
from shared.wire.subjects import REQUESTS_STREAM, accepted_key, cancel_key, cancel_subject, request_subject
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
async def migrated(database_url: str) -> str:
    return await migrate_database(database_url)


@pytest.fixture
async def gateway(
    tmp_path: Path, nats_server: EmbeddedNats, migrated: str, spans: InMemorySpanExporter
) -> AsyncIterator[Gateway]:
    async with gateway_for(gateway_settings(tmp_path, nats_server.url, migrated)) as running:
        yield running


async def test_accept_answers_202_and_queues_the_request_with_its_headers_and_bucket_entry(
    gateway: Gateway,
) -> None:
    response = await gateway.submit(tools=["bandit", "ruff", "bandit"], priority="high")

    assert response.status_code == 202, response.text
    body = response.json()
    task_id = body["task_id"]
    assert response.headers["location"] == f"/api/tasks/{task_id}"
    assert body["status"] == "pending"
    assert (body["model_slug"], body["app_number"], body["analysis_type"]) == (MODEL, APP, "static")
    assert body["tools"] == ["bandit", "ruff"]
    assert body["priority"] == "high"
    assert len(body["trace_id"]) == 32
    assert body["links"] == {"self": f"/api/tasks/{task_id}", "events": f"/api/tasks/{task_id}/events"}

    message = await gateway.js.get_last_msg(REQUESTS_STREAM, request_subject("high"))
    assert message.data is not None
    request = decode_request(message.data)
    assert request.task.id == task_id
    assert request.tools == ["bandit", "ruff"]
    assert request.deadline_s == gateway.settings.task_deadline_s
    assert message.headers is not None
    assert message.headers["Nats-Msg-Id"] == request.event_id
    version, trace_id, _span_id, _flags = message.headers["traceparent"].split("-")
    assert (version, trace_id) == ("00", body["trace_id"])

    entry = await gateway.tasks.get(accepted_key(task_id))
    assert entry.value is not None
    assert decode_request(entry.value) == request


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"model_slug": "../etc"}, "model_slug", "matching regex"),
        ({"model_slug": "a..b"}, "model_slug", "'..'"),
        ({"app_number": 0}, "app_number", ">= 1"),
        ({"app_number": "one"}, "app_number", "Expected `int`"),
        ({"analysis_type": "astrology"}, "analysis_type", "astrology"),
        ({"priority": "asap"}, "priority", "asap"),
        ({"tools": ["bandit", "nmap"]}, "tools", "nmap"),
        ({"deadline_s": -1}, "deadline_s", ">= 5"),
        ({"deadline_s": 1e-9}, "deadline_s", ">= 5"),
        ({"target_urls": ["file:///etc/passwd"]}, "target_urls", "regex"),
        ({"target_urls": ["http://127.0.0.1:5000/\r\nX-Evil: 1"]}, "target_urls", "regex"),
        ({"options": {"timeouts": {"pylint": "soon"}}}, "options", "timeouts"),
        ({"options": {"timeouts": {"pylint": 0}}}, "options", "timeouts"),
        ({"options": {"timeouts": {"pylint": 1e-300}}}, "options", ">= 1"),
        ({"options": {"timeouts": {"nmap": 30}}}, "options.timeouts", "nmap"),
        ({"options": {"load": 50}}, "options", "load"),
        ({"options": {"load": {"requests": -1}}}, "options", "load.requests"),
        ({"options": {"load": {"requets": 10}}}, "options", "requets"),
        ({"options": {"lod": {}}}, "options", "unknown field `lod`"),
        ({"options": {"bandit": {"level": "high"}}}, "options", "level"),
        ({"options": {"code-quality-review": {"max_prompt_chars": 5}}}, "options", "max_prompt_chars"),
    ],
)
async def test_invalid_field_is_422_naming_the_field_and_nothing_is_queued(
    gateway: Gateway, overrides: dict[str, object], field: str, says: str
) -> None:
    response = await gateway.submit(**overrides)

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["status_code"] == 422
    assert body["errors"][0]["field"].startswith(field)
    assert says in body["detail"] and field in body["detail"]
    assert await gateway.requests_in_stream() == 0


async def test_unknown_tool_names_the_allowed_tools(gateway: Gateway) -> None:
    response = await gateway.submit(analysis_type="dynamic", tools=["bandit"])

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "bandit" in detail and "allowed: reachability, security-headers" in detail


async def test_malformed_json_is_422(gateway: Gateway) -> None:
    response = await gateway.http.post(
        "/api/analysis/run", content=b'{"model_slug": "x",', headers={"content-type": "application/json"}
    )

    assert response.status_code == 422, response.text
    assert "not valid JSON" in response.json()["detail"]
    assert await gateway.requests_in_stream() == 0


async def test_unknown_app_is_404(gateway: Gateway) -> None:
    response = await gateway.submit(app_number=7)

    assert response.status_code == 404
    assert response.json()["detail"] == f"app {MODEL}/app7 not found under the apps root"
    assert await gateway.requests_in_stream() == 0


async def test_get_right_after_accept_answers_pending_before_the_persister_has_it(gateway: Gateway) -> None:
    task_id = (await gateway.submit(analysis_type="security")).json()["task_id"]

    response = await gateway.http.get(f"/api/tasks/{task_id}")

    assert response.status_code == 200, response.text
    task = response.json()
    assert (task["task_id"], task["status"], task["analysis_type"]) == (task_id, "pending", "security")
    assert task["requested_tools"] == ["bandit", "semgrep", "detect-secrets", "pip-audit", "npm-audit"]
    assert task["findings_count"] == 0 and task["tools"] == []


async def test_get_answers_pending_even_when_the_database_is_not_migrated_yet(
    tmp_path: Path, nats_server: EmbeddedNats, database_url: str
) -> None:
    # No tokens table in an unmigrated database: this test is about the bucket, so the gateway runs open.
    async with gateway_for(gateway_settings(tmp_path, nats_server.url, database_url, auth=False)) as gateway:
        task_id = (await gateway.submit()).json()["task_id"]
        response = await gateway.http.get(f"/api/tasks/{task_id}")
        unknown = await gateway.http.get("/api/tasks/task_000000000000")

    assert response.status_code == 200 and response.json()["status"] == "pending"
    assert unknown.status_code == 503 and "database" in unknown.json()["detail"]


async def test_get_task_recorded_in_the_database_returns_its_fields(gateway: Gateway, migrated: str) -> None:
    await insert_task(migrated, "task_0123456789ab")

    task = (await gateway.http.get("/api/tasks/task_0123456789ab")).json()

    assert task["status"] == "completed"
    assert task["progress"] == {"percent": 100.0, "message": "done"}
    assert task["findings_count"] == 3
    assert task["severity_breakdown"] == {"critical": 0, "high": 1, "medium": 0, "low": 2, "info": 0}
    assert task["findings_by_tool"] == {"bandit": 1, "ruff": 2}
    assert task["services"] == [
        {"service": "static", "status": "success", "error": None, "findings_count": 3}
    ]
    assert [(t["tool"], t["command"], t["exit_code"], t["files_analyzed"]) for t in task["tools"]] == [
        ("bandit", ["bandit", "."], 1, 4),
        ("ruff", ["ruff", "."], 1, 4),
    ]
    assert task["result_dir"] == f"{MODEL}/app{APP}/task_static_x"
    assert task["trace_id"] == "ab" * 16
    assert task["started_at"] and task["finished_at"]


async def test_findings_are_paginated_and_filtered(gateway: Gateway, migrated: str) -> None:
    await insert_task(migrated, "task_0123456789ab")

    first = (await gateway.http.get("/api/tasks/task_0123456789ab/findings", params={"limit": 2})).json()
    ruff = (await gateway.http.get("/api/tasks/task_0123456789ab/findings", params={"tool": "ruff"})).json()
    high = (
        await gateway.http.get("/api/tasks/task_0123456789ab/findings", params={"severity": "high"})
    ).json()
    bad = await gateway.http.get("/api/tasks/task_0123456789ab/findings", params={"severity": "dire"})

    assert (first["total"], len(first["findings"])) == (3, 2)
    assert first["findings"][0]["rule_id"] == "B105"  # most severe first
    assert {f["rule_id"] for f in ruff["findings"]} == {"F401", "E711"}
    assert [f["rule_id"] for f in high["findings"]] == ["B105"]
    assert bad.status_code == 422


async def test_task_list_filters_and_orders_newest_first(gateway: Gateway, migrated: str) -> None:
    await insert_task(migrated, "task_000000000001")
    await insert_task(migrated, "task_000000000002", status="running")

    everything = (await gateway.http.get("/api/tasks")).json()
    running = (await gateway.http.get("/api/tasks", params={"status": "running"})).json()
    other_app = (await gateway.http.get("/api/tasks", params={"model_slug": MODEL, "app_number": 2})).json()

    assert [t["task_id"] for t in everything["tasks"]] == ["task_000000000002", "task_000000000001"]
    assert [t["task_id"] for t in running["tasks"]] == ["task_000000000002"]
    assert other_app == {"tasks": [], "total": 0, "limit": 50, "offset": 0}


async def test_task_list_counts_the_findings_of_a_running_task_from_its_rows(
    gateway: Gateway, migrated: str
) -> None:
    await insert_task(migrated, "task_000000000003", status="running")
    engine = create_engine(migrated)
    async with engine.begin() as connection:  # the persister sets the row's total only when the task ends
        await connection.execute(update(Task).values(findings_count=0))
    await engine.dispose()

    listed = (await gateway.http.get("/api/tasks")).json()["tasks"]
    detail = (await gateway.http.get("/api/tasks/task_000000000003")).json()

    assert [task["findings_count"] for task in listed] == [3] == [detail["findings_count"]]


async def test_unknown_task_is_404_and_malformed_id_is_422(gateway: Gateway) -> None:
    unknown = await gateway.http.get("/api/tasks/task_ffffffffffff")
    malformed = await gateway.http.get("/api/tasks/task_XYZ")

    assert unknown.status_code == 404
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "task_id"


async def test_cancel_publishes_on_the_cancel_subject_and_puts_the_marker(
    gateway: Gateway, migrated: str
) -> None:
    task_id = (await gateway.submit()).json()["task_id"]
    received = await gateway.nc.subscribe(cancel_subject(task_id))
    await gateway.nc.flush()

    response = await gateway.http.post(f"/api/tasks/{task_id}/cancel")

    assert response.status_code == 202
    assert response.json() == {"task_id": task_id, "status": "cancelling"}
    message = await received.next_msg(timeout=5)
    assert decode_cancel(message.data).task_id == task_id
    marker = await gateway.tasks.get(cancel_key(task_id))
    assert marker.value is not None and decode_cancel(marker.value).task_id == task_id

    assert (await gateway.http.post("/api/tasks/task_ffffffffffff/cancel")).status_code == 404
    await insert_task(migrated, "task_0123456789ab", status="completed")
    finished = await gateway.http.post("/api/tasks/task_0123456789ab/cancel")
    assert finished.status_code == 409 and "already completed" in finished.json()["detail"]
    with pytest.raises(NotFoundError):
        await gateway.tasks.get(cancel_key("task_0123456789ab"))


async def test_readyz_is_503_naming_nats_when_the_server_is_stopped(
    gateway: Gateway, nats_server: EmbeddedNats
) -> None:
    assert (await gateway.http.get("/readyz")).json() == {"status": "ready", "nats": "ok", "database": "ok"}

    await nats_server.stop()
    deadline = asyncio.get_running_loop().time() + 10
    while (ready := await gateway.http.get("/readyz")).status_code == 200:
        assert asyncio.get_running_loop().time() < deadline, "gateway still ready with NATS stopped"
        await asyncio.sleep(0.1)

    assert ready.status_code == 503
    assert ready.json()["nats"].startswith("down") and ready.json()["database"] == "ok"
    assert (await gateway.http.get("/healthz")).status_code == 200
    refused = await gateway.submit()
    assert refused.status_code == 503 and "NATS" in refused.json()["detail"]


async def test_openapi_document_lists_every_route(gateway: Gateway) -> None:
    document = (await gateway.http.get("/schema/openapi.json")).json()

    assert {
        "/api/analysis/run",
        "/api/tasks",
        "/api/tasks/{task_id}",
        "/api/tasks/{task_id}/findings",
        "/api/tasks/{task_id}/cancel",
        "/api/tasks/{task_id}/events",
        "/healthz",
        "/readyz",
    } <= set(document["paths"])
    assert "post" in document["paths"]["/api/analysis/run"]
