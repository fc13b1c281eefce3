"""`assay analyze`, `assay status`, `assay cancel` as subprocesses against a real gateway (uvicorn on loopback, a
real nats-server, a real SQLite file): exit codes and what is printed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.jetstream.natsd import EmbeddedNats
from shared.wire.messages import decode_request
from shared.wire.subjects import REQUESTS_STREAM, request_subject
from tests.support.gateway import (
    APP,
    MODEL,
    Gateway,
    gateway_for,
    gateway_settings,
    insert_task,
    migrate_database,
    run_cli,
)


@pytest.fixture
async def gateway(tmp_path: Path, nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Gateway]:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url))
    async with gateway_for(settings) as running:
        yield running


async def assay(gateway: Gateway, *args: str) -> tuple[int, str, str]:
    return await run_cli(gateway, *args)


async def test_analyze_of_an_invalid_slug_exits_2_with_the_gateways_reason(gateway: Gateway) -> None:
    code, out, err = await assay(gateway, "analyze", "../etc", "1")

    assert code == 2
    assert out == ""
    assert "request refused (422)" in err and "model_slug" in err and "matching regex" in err


async def test_analyze_with_an_unknown_tool_exits_2_naming_it_and_the_allowed_ones(gateway: Gateway) -> None:
    code, _out, err = await assay(gateway, "analyze", MODEL, str(APP), "--tools", "bandit,nmap")

    assert code == 2
    assert "nmap" in err and "allowed: bandit, ruff" in err


async def test_analyze_prints_the_task_id_of_the_queued_request(gateway: Gateway) -> None:
    # The targets are the app's own ports (the targets policy allows those on loopback).
    app_folder = gateway.settings.apps_dir / MODEL / f"app{APP}"
    (app_folder / ".env").write_text("BACKEND_PORT=5011\nFRONTEND_PORT=5012\n")
    code, out, _err = await assay(
        gateway,
        "analyze",
        MODEL,
        str(APP),
        "--tools",
        "ruff",
        "--priority",
        "urgent",
        "--target",
        "http://127.0.0.1:5011",
        "--target",
        "http://127.0.0.1:5012",
    )

    assert code == 0
    task_id = out.strip()
    assert re.fullmatch(r"task_[0-9a-f]{12}", task_id)
    message = await gateway.js.get_last_msg(REQUESTS_STREAM, request_subject("urgent"))
    assert message.data is not None
    request = decode_request(message.data)
    assert (request.task.id, request.tools) == (task_id, ["ruff"])
    assert request.target_urls == ["http://127.0.0.1:5011", "http://127.0.0.1:5012"]


async def test_analyze_wait_gives_up_at_the_timeout_with_exit_1(gateway: Gateway) -> None:
    # No orchestrator runs here, so the task stays pending.
    code, out, err = await assay(gateway, "analyze", MODEL, str(APP), "--wait", "--timeout", "1")

    assert code == 1
    assert re.fullmatch(r"task_[0-9a-f]{12}\n", out)
    assert "pending" in err and "not finished after 1 s" in err


async def test_status_prints_the_tool_and_severity_tables(gateway: Gateway) -> None:
    await insert_task(gateway.settings.database_url, "task_0123456789ab")

    code, out, _err = await assay(gateway, "status", "task_0123456789ab")

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"task task_0123456789ab: completed  (static of {MODEL}/app{APP}, priority normal)"
    assert re.search(r"^bandit\s+static\s+success\s+1\s+0\.50 s$", out, re.MULTILINE)
    assert re.search(r"^ruff\s+static\s+success\s+2\s+0\.50 s$", out, re.MULTILINE)
    # Findings and distinct issues (each of the three is its own issue)
    assert re.search(r"^high\s+1\s+1$", out, re.MULTILINE) and re.search(
        r"^total\s+3\s+3$", out, re.MULTILINE
    )
    assert f"result folder: {gateway.settings.results_dir / MODEL / f'app{APP}' / 'task_static_x'}" in lines
    assert f"trace id: {'ab' * 16}  (assay trace task_0123456789ab)" in lines


async def test_status_and_cancel_of_unknown_or_finished_tasks_exit_1(gateway: Gateway) -> None:
    await insert_task(gateway.settings.database_url, "task_0123456789ab")

    unknown = await assay(gateway, "status", "task_ffffffffffff")
    finished = await assay(gateway, "cancel", "task_0123456789ab")

    assert unknown[0] == 1 and "task task_ffffffffffff not found" in unknown[2]
    assert finished[0] == 1 and "already completed" in finished[2]


async def test_cancel_of_a_pending_task_says_cancelling(gateway: Gateway) -> None:
    task_id = (await gateway.submit()).json()["task_id"]

    code, out, _err = await assay(gateway, "cancel", task_id)

    assert (code, out) == (0, f"{task_id}: cancelling\n")
