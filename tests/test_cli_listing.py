"""`assay tasks`, `assay show`, `assay findings` and `--json` as subprocesses against a served gateway (real
nats-server, real SQLite file), and the one clear line on a closed pipe."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.persister.database import record_service
from shared.jetstream.natsd import EmbeddedNats
from shared.store.database import create_engine, sessions
from shared.wire.messages import ServiceFinished
from shared.wire.protocol import ServiceResult
from shared.wire.tasks import TaskRef
from tests.support.gateway import (
    APP,
    MODEL,
    Gateway,
    gateway_for,
    gateway_settings,
    insert_task,
    migrate_database,
)

REPO = Path(__file__).resolve().parent.parent
TASK = "task_0000000000c1"


@pytest.fixture
async def gateway(tmp_path: Path, nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Gateway]:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url))
    async with gateway_for(settings) as running:
        await insert_task(database_url, TASK)
        await insert_task(database_url, "task_0000000000c2", status="failed")
        yield running


async def assay(gateway: Gateway, *args: str, stdout: int = asyncio.subprocess.PIPE) -> tuple[int, str, str]:
    """The CLI in a subprocess, started from a folder that is not the repository (paths come from the gateway)."""
    env = {
        **os.environ,
        "ASSAY_GATEWAY_URL": gateway.url,
        "PYTHONPATH": str(REPO),
        "ASSAY_TOKEN": gateway.token or "",
    }
    env.pop("ASSAY_RESULTS_DIR", None)
    elsewhere = gateway.settings.var_dir.parent / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args,
        cwd=elsewhere, env=env, stdout=stdout, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, (out or b"").decode(), err.decode()


async def test_tasks_lists_newest_first_and_filters(gateway: Gateway) -> None:
    code, out, _err = await assay(gateway, "tasks")
    failed = json.loads((await assay(gateway, "tasks", "--status", "failed", "--json"))[1])

    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["task", "status", "type", "app", "findings", "created", "(UTC)", "verdicts"]
    assert [line.split()[:2] for line in lines[1:3]] == [["task_0000000000c2", "failed"], [TASK, "completed"]]
    assert lines[1].split()[3:5] == [f"{MODEL}/app{APP}", "3"]
    assert lines[-1] == "2 of 2 tasks"
    assert [task["task_id"] for task in failed["tasks"]] == ["task_0000000000c2"]


async def test_show_prints_the_task_and_its_issues(gateway: Gateway) -> None:
    code, out, _err = await assay(gateway, "show", TASK)
    as_json = json.loads((await assay(gateway, "show", TASK, "--json"))[1])

    assert code == 0
    assert out.startswith(f"task {TASK}: completed")
    assert "3 issues from 3 findings" in out
    # The gateway's path of the folder, not one relative to the folder the CLI runs in.
    assert f"result folder: {gateway.settings.results_dir / MODEL / f'app{APP}' / 'task_static_x'}" in out
    assert any(line.split()[:2] == ["high", "bandit:B105"] for line in out.splitlines())
    assert as_json["task"]["task_id"] == TASK and as_json["issues"]["total"] == 3


async def test_findings_narrowed_by_severity_and_tool_as_text_and_json(gateway: Gateway) -> None:
    code, out, _err = await assay(gateway, "findings", TASK, "--severity", "low")
    as_json = json.loads((await assay(gateway, "findings", TASK, "--tool", "bandit", "--json"))[1])
    missing = await assay(gateway, "findings", "task_ffffffffffff")

    assert code == 0
    assert out.splitlines()[0] == "2 of 2 findings"
    assert {line.split()[2] for line in out.splitlines()[2:]} == {"F401", "E711"}
    assert [(f["tool"], f["rule_id"]) for f in as_json["findings"]] == [("bandit", "B105")]
    assert missing[0] == 1 and "task task_ffffffffffff not found" in missing[2]


async def test_status_and_cancel_take_json(gateway: Gateway) -> None:
    status = json.loads((await assay(gateway, "status", TASK, "--json"))[1])
    pending = (await gateway.submit()).json()["task_id"]
    cancelled = json.loads((await assay(gateway, "cancel", pending, "--json"))[1])

    assert status["task_id"] == TASK and status["issues_count"] == 3
    assert cancelled == {"task_id": pending, "status": "cancelling"}


async def test_a_closed_pipe_is_one_clear_line_not_a_traceback(gateway: Gateway) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: the first write fails with EPIPE
    try:
        code, _out, err = await assay(gateway, "tasks", stdout=write_end)
    finally:
        os.close(write_end)

    assert code == 141
    assert err.strip() == "assay: output closed before everything was written (broken pipe)"


async def test_load_figures_are_in_the_task_view_and_the_cli(gateway: Gateway, database_url: str) -> None:
    url = "http://127.0.0.1:5011/api/items"
    figures = {"requests": 200, "errors": 3, "error_rate": 0.015, "throughput_rps": 88.5,
               "latency_ms": {"p50": 12.25, "p99": 140.0}}  # fmt: skip
    result = ServiceResult(
        service="performance", status="success", metrics={"load": {"urls": {url: figures}}}
    )
    ref = TaskRef(id=TASK, model_slug=MODEL, app_number=APP, analysis_type="static")
    engine = create_engine(database_url)
    await record_service(
        sessions(engine), ServiceFinished(task=ref, service="performance", status="success"), result, None
    )
    await engine.dispose()

    view = (await gateway.http.get(f"/api/tasks/{TASK}")).json()
    code, out, _err = await assay(gateway, "status", TASK)

    assert view["load"] == [
        {"url": url, "requests": 200, "errors": 3, "error_rate": 0.015, "p50_ms": 12.25, "p99_ms": 140.0,
         "throughput_rps": 88.5}
    ]  # fmt: skip
    assert code == 0
    assert any(
        line.split() == [url, "200", "3", "1.5%", "12.2", "ms", "140.0", "ms", "88.5"]
        for line in out.splitlines()
    )
