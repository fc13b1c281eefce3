"""All four analyzers through the real stack: a comprehensive run on a running sample app, an analyzer killed
mid-run, and a cancel that must stop the tool processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.wire.protocol import HEARTBEAT_INTERVAL_S
from tests.support.analyzers import start_backend, stop
from tests.support.fake_llm import FakeLLM
from tests.support.held_analyzer import MARK
from tests.support.processes import alive, descendants
from tests.support.stack import Stack

REPO = Path(__file__).resolve().parent.parent
APPS = REPO / "generated" / "apps"
MODEL, APP = "openai_codex-mini", 1
OUTAGE_S = 3  # how long runs wait for an analyzer that is gone (ASSAY_ANALYZER_OUTAGE_S)


def count(stack: Stack, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(stack.database_file) as db:
        return db.execute(sql, params).fetchall()


def tool_processes(analyzer: int) -> set[int]:
    """The processes below the analyzer that run a tool for a task: its warm tool servers (fork_server.py, kept
    for the analyzer's life) are left out, the runs they fork for a task are not."""
    processes = descendants(analyzer)
    servers = set()
    for pid in processes:
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if parent == analyzer and b"fork_server" in argv:
            servers.add(pid)
    return processes - servers


def test_comprehensive_run_on_a_running_app_gets_findings_from_ten_tools(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    backend_url, backend = start_backend(f"{MODEL}/app{APP}", tmp_path / "backend")
    stack = Stack(
        tmp_path / "stack",
        apps_dir=APPS,
        analyzers={"static": 1, "dynamic": 1, "performance": 1, "ai": 1},
        extra_env={
            "ASSAY_AI_BASE_URL": fake_llm.url,
            "ASSAY_AI_API_KEY": fake_llm.key,
            # The checks' time budget is not this test's subject: four analyzers on a loaded CI machine once took
            # an active check past its 40 s, and the run was (rightly) partial.
            "ASSAY_ATTACK_MAX_S": "300",
        },
    )
    try:
        stack.start()
        task_id = stack.submit(
            model_slug=MODEL,
            app_number=APP,
            analysis_type="comprehensive",
            target_urls=[backend_url],
            # a p99 budget no server meets, so the load tool reports a finding as well as its figures
            options={"load": {"requests": 40, "concurrency": 4, "thresholds": {"p99_ms": 0.001}}},
        )
        task = stack.wait_terminal(task_id, timeout_s=240)
    finally:
        stack.stop()
        stop(backend)
    short = count(
        stack, "select tool, status, reason from tool_runs where task_id = ? and status != 'success'", task_id
    )
    assert task["status"] == "completed", (task["status_reason"], short, stack.log_tail())
    services = dict(count(stack, "select service, status from service_runs where task_id = ?", task_id))
    assert services == {"static": "success", "dynamic": "success", "performance": "success", "ai": "success"}
    by_tool = dict(
        count(stack, "select tool, count(*) from findings where task_id = ? group by tool", task_id)
    )
    assert len(by_tool) >= 10, by_tool
    assert {"requirements-review", "code-quality-review"} & set(by_tool), "no AI findings persisted"
    assert {"security-headers", "sensitive-paths"} <= set(by_tool)
    tools_by_service = count(
        stack,
        "select service, count(distinct tool) from findings where task_id = ? group by service",
        task_id,
    )
    assert {service for service, _ in tools_by_service} == {"static", "dynamic", "performance", "ai"}
    # every finding the services reported is persisted: the tool runs agree with the rows
    recorded = dict(count(stack, "select tool, findings_count from tool_runs where task_id = ?", task_id))
    assert {tool: n for tool, n in recorded.items() if n} == by_tool
    assert task["findings_count"] == sum(by_tool.values())
    assert fake_llm.requests, "the AI analyzer never called the chat-completions server"


@pytest.fixture
def apps(tmp_path: Path) -> Path:
    """A copy of the sample apps, which a test may add a file to."""
    shutil.copytree(APPS / MODEL / f"app{APP}", tmp_path / "apps" / MODEL / f"app{APP}")
    return tmp_path / "apps"


@pytest.fixture
def fleet(tmp_path: Path, apps: Path) -> Iterator[Stack]:
    """A stack whose static analyzer holds pylint's run (tests/support/held_analyzer.py): the tests act while a tool
    runs, and a run of known length costs no CPU."""
    stack = Stack(
        tmp_path / "stack",
        apps_dir=apps,
        analyzers={"static": 1},
        analyzer_modules={"static": "tests.support.held_analyzer"},
        extra_env={
            "ASSAY_HEARTBEAT_TIMEOUT_S": "4",
            "ASSAY_TOOL_CONCURRENCY": "2",
            "ASSAY_ANALYZER_OUTAGE_S": str(OUTAGE_S),
        },
    )
    stack.start()
    yield stack
    stack.stop()


def wait_for_tools(stack: Stack, task_id: str) -> set[int]:
    """Pids of the tool processes the static analyzer runs for the task, once its held pylint is among them."""
    analyzer = stack.processes["static-0"].pid
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = tool_processes(analyzer)
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in alive(pids)]
        if any(MARK.encode() in argv for argv in commands):
            return pids
        time.sleep(0.1)
    raise TimeoutError(f"pylint never started for {task_id}:\n{stack.log_tail()}")


def test_killing_the_only_analyzer_mid_run_for_good_fails_the_task_with_a_reason_past_the_outage_limit(
    fleet: Stack,
) -> None:
    task_id = fleet.submit(
        model_slug=MODEL, app_number=APP, analysis_type="static", tools=["pylint", "bandit"]
    )
    tools = wait_for_tools(fleet, task_id)
    killed_at = time.monotonic()
    fleet.kill("static-0")
    while alive(tools) and time.monotonic() - killed_at < 2.0:
        time.sleep(0.05)
    assert not alive(tools), f"tool processes outlived their killed analyzer: {alive(tools)}"
    task = fleet.wait_terminal(task_id, timeout_s=30)
    waited = time.monotonic() - killed_at
    assert task["status"] in ("failed", "partial")
    assert "static" in task["status_reason"], task["status_reason"]
    assert "ASSAY_ANALYZER_OUTAGE_S" in task["status_reason"], task["status_reason"]
    assert OUTAGE_S <= waited < OUTAGE_S + 6, f"took {waited:.1f} s; the outage limit is {OUTAGE_S} s"
    assert fleet.results_dir.joinpath(task["result_dir"]).is_dir()


def test_a_silent_analyzer_fails_the_run_after_the_heartbeat_window(fleet: Stack) -> None:
    task_id = fleet.submit(model_slug=MODEL, app_number=APP, analysis_type="static", tools=["pylint"])
    wait_for_tools(fleet, task_id)
    analyzer = fleet.processes["static-0"].pid
    os.kill(analyzer, signal.SIGSTOP)
    try:
        stopped_at = time.monotonic()
        task = fleet.wait_terminal(task_id, timeout_s=30)
        waited = time.monotonic() - stopped_at
    finally:
        os.kill(analyzer, signal.SIGCONT)
    assert task["status"] == "failed"
    assert "sent nothing" in task["status_reason"], task["status_reason"]
    # the 3 s window runs from the analyzer's last frame, which came at most one heartbeat interval before the stop
    assert 3 - HEARTBEAT_INTERVAL_S <= waited < 4 + 5


def test_cancelling_a_running_task_stops_its_tool_processes_within_two_seconds(fleet: Stack) -> None:
    task_id = fleet.submit(model_slug=MODEL, app_number=APP, analysis_type="static", tools=["pylint", "mypy"])
    tools = wait_for_tools(fleet, task_id)
    assert alive(tools)
    cancelled_at = time.monotonic()
    response = httpx.post(
        f"{fleet.gateway_url}/api/tasks/{task_id}/cancel", headers=fleet.headers, timeout=10
    )
    assert response.status_code == 202, response.text
    while alive(tools) and time.monotonic() - cancelled_at < 2.0:
        time.sleep(0.05)
    assert not alive(tools), f"tool processes still running 2 s after cancel: {alive(tools)}"
    task = fleet.wait_terminal(task_id, timeout_s=20)
    assert task["status"] == "cancelled"
    assert fleet.processes["static-0"].poll() is None, "the analyzer itself must survive a cancel"


def test_a_cancel_keeps_the_findings_of_the_tools_that_had_finished(fleet: Stack, apps: Path) -> None:
    app = apps / MODEL / f"app{APP}"
    (app / "backend" / "flaw.py").write_text(
        "import subprocess\n\n\ndef run(command):\n    return subprocess.call(command, shell=True)\n"
    )
    task_id = fleet.submit(
        model_slug=MODEL, app_number=APP, analysis_type="static", tools=["bandit", "pylint"]
    )
    wait_for_tools(fleet, task_id)
    # Half the task done is bandit's run ended: the held pylint cannot end. (Watching for bandit's process to be
    # gone was not enough: its warm server, still warming up, has no run process yet.)
    deadline = time.monotonic() + 60
    while fleet.task(task_id)["progress"]["percent"] < 50:
        assert time.monotonic() < deadline, f"bandit never finished:\n{fleet.log_tail()}"
        time.sleep(0.1)
    response = httpx.post(
        f"{fleet.gateway_url}/api/tasks/{task_id}/cancel", headers=fleet.headers, timeout=10
    )
    assert response.status_code == 202, response.text
    task = fleet.wait_terminal(task_id, timeout_s=30)
    assert task["status"] == "cancelled"
    assert count(fleet, "select service, status from service_runs where task_id = ?", task_id) == [
        ("static", "cancelled")
    ]
    runs = dict(count(fleet, "select tool, status from tool_runs where task_id = ?", task_id))
    assert runs == {"bandit": "success", "pylint": "cancelled"}, runs
    kept = count(fleet, "select tool, rule_id, path from findings where task_id = ?", task_id)
    assert ("bandit", "B602", "backend/flaw.py") in kept, kept
    assert {tool for tool, _, _ in kept} == {"bandit"}
    assert task["findings_count"] == len(kept)
    folder = fleet.results_dir / task["result_dir"]
    document = json.loads((folder / f"{MODEL}_app{APP}_{task_id}.json").read_text())
    assert document["summary"]["status"] == "cancelled" and document["summary"]["from_cancelled_task"] is True
    assert len(document["results"]["findings"]) == len(kept)
    assert document["results"]["tool_results"]["pylint"]["status"] == "cancelled"
    assert json.loads((folder / "services" / "static.json").read_text())["status"] == "cancelled"
