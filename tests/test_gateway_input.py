"""No 5xx from client input: bounded paging, bounded nesting and size, a 413 before NATS would refuse, a 503 (not
a 500) when the database is down, every 5xx logged with its traceback, time stamps with a time zone.

A real gateway (uvicorn on loopback), a real nats-server, a real SQLite file (and a PostgreSQL URL where nothing
listens, for a database that is down).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import msgspec
import pytest

from shared.jetstream.natsd import EmbeddedNats
from shared.wire.catalog import TOOLS_BY_SERVICE
from shared.wire.options import RequestOptions
from tests.support.gateway import (
    APP,
    MODEL,
    Gateway,
    bearer,
    gateway_for,
    gateway_settings,
    insert_task,
    migrate_database,
    running_gateway,
)
from tests.support.ports import free_port


@pytest.fixture
async def gateway(tmp_path: Path, nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Gateway]:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url))
    async with gateway_for(settings) as running:
        yield running


class SmallPayloadNats(EmbeddedNats):
    """A nats-server that carries at most 4 KiB per message."""

    def config(self) -> str:
        return super().config().replace(f"max_payload: {8 * 1024 * 1024}", "max_payload: 4096")


def test_request_options_name_every_tool_of_the_catalog() -> None:
    names = {field.encode_name for field in msgspec.structs.fields(RequestOptions)} - {
        "timeouts",
        "app",
        "fresh",
    }

    assert names == {tool for tools in TOOLS_BY_SERVICE.values() for tool in tools}


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/tasks?offset=9223372036854775808", "offset"),
        ("/api/tasks?offset=-1", "offset"),
        ("/api/tasks?limit=100000", "limit"),
        ("/api/tasks/task_0123456789ab/findings?offset=9223372036854775808", "offset"),
    ],
)
async def test_paging_out_of_range_is_422_naming_the_parameter(
    gateway: Gateway, migrated_task: None, path: str, field: str
) -> None:
    answer = await gateway.http.get(path)

    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == field


@pytest.fixture
async def migrated_task(gateway: Gateway) -> None:
    await insert_task(gateway.settings.database_url, "task_0123456789ab")


@pytest.mark.parametrize(
    "options",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"load": {"paths": ' + "[" * 100_000 + "]" * 100_000 + "}}",
        '{"surprise": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
    ids=["options", "in-a-known-field", "in-an-unknown-field"],
)
async def test_deeply_nested_options_are_422(gateway: Gateway, options: str) -> None:
    body = (
        f'{{"model_slug": "{MODEL}", "app_number": {APP}, "analysis_type": "static", "options": {options}}}'
    )

    answer = await gateway.http.post(
        "/api/analysis/run", content=body.encode(), headers={"content-type": "application/json"}
    )

    assert answer.status_code == 422, answer.text
    assert "nested too deeply" in answer.json()["detail"]
    assert await gateway.requests_in_stream() == 0


async def test_a_body_over_the_limit_is_413(gateway: Gateway) -> None:
    paths = ["/" + "a" * 2000] * 200  # ~400 kB, over the 256 KiB default

    answer = await gateway.submit(options={"load": {"paths": paths}})

    assert answer.status_code == 413, answer.text
    assert await gateway.requests_in_stream() == 0


async def test_a_request_nats_cannot_carry_is_413_not_503(tmp_path: Path, database_url: str) -> None:
    server = SmallPayloadNats(tmp_path / "small-nats")
    await server.start()
    try:
        settings = gateway_settings(tmp_path, server.url, await migrate_database(database_url))
        async with gateway_for(settings) as gateway:
            answer = await gateway.submit(options={"load": {"paths": ["/" + "p" * 1000] * 5}})
            queued = await gateway.requests_in_stream()
            small = await gateway.submit()
    finally:
        await server.stop()

    assert answer.status_code == 413, answer.text
    assert "NATS carries at most" in answer.json()["detail"]
    assert queued == 0
    assert small.status_code == 202


@pytest.fixture
async def database_down(tmp_path: Path, nats_server: EmbeddedNats) -> AsyncIterator[Gateway]:
    """A gateway whose database (PostgreSQL on a port where nothing listens) is down; it runs open, since no
    token can be checked without a database."""
    down = f"postgresql+asyncpg://assay@127.0.0.1:{free_port()}/assay"
    async with gateway_for(gateway_settings(tmp_path, nats_server.url, down, auth=False)) as running:
        yield running


async def test_reads_answer_503_naming_the_database_when_it_is_down(
    database_down: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="services.gateway.errors")

    listed = await database_down.http.get("/api/tasks")
    one = await database_down.http.get("/api/tasks/task_0123456789ab")
    findings = await database_down.http.get("/api/tasks/task_0123456789ab/findings")
    tokens = await database_down.http.get("/api/tokens")

    for answer in (listed, one, findings, tokens):
        assert answer.status_code == 503, answer.text
        assert "database" in answer.json()["detail"]
    logged = [record for record in caplog.records if getattr(record, "task_id", None) == "task_0123456789ab"]
    assert logged and all(record.exc_info for record in logged)  # with the traceback and the task id


async def test_a_token_cannot_be_checked_with_the_database_down_503(
    tmp_path: Path, nats_server: EmbeddedNats
) -> None:
    down = f"postgresql+asyncpg://assay@127.0.0.1:{free_port()}/assay"
    settings = gateway_settings(tmp_path, nats_server.url, down)
    async with running_gateway(settings) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        answer = await http.get("/api/tasks", headers=bearer("assay_0123456789ab_" + "A" * 43))

    assert answer.status_code == 503, answer.text
    assert "cannot check the token: database unavailable" in answer.json()["detail"]


async def test_time_stamps_carry_a_time_zone(gateway: Gateway, migrated_task: None) -> None:
    detail = (await gateway.http.get("/api/tasks/task_0123456789ab")).json()
    listed = (await gateway.http.get("/api/tasks")).json()["tasks"][0]
    tokens = (await gateway.http.get("/api/tokens")).json()["tokens"]

    stamps = [detail["created_at"], detail["started_at"], detail["finished_at"], listed["created_at"]]
    stamps += [token["created_at"] for token in tokens]
    assert all(datetime.fromisoformat(stamp).tzinfo is not None for stamp in stamps), stamps
