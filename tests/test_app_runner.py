"""The app runner through the orchestrator: Assay prepares and starts the app itself for analyses that need it
running, hands its URLs to the analyzers, records the run, and leaves nothing running; several apps at once stay
within the budget, each on its own ports, including a batch of apps submitted over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import msgspec
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.orchestrator.apps.runner import AppRunner, AppSlot, sandbox_settings
from shared.jetstream.natsd import EmbeddedNats
from shared.operations.config import load_settings
from shared.wire.app_run import AppRun
from shared.wire.messages import (
    AnalysisRequest,
    CancelRequest,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    encode,
)
from shared.wire.subjects import cancel_subject
from tests.support.apps import app_processes, app_request, make_app, needs_bwrap, runner_settings
from tests.support.fake_llm import FakeLLM
from tests.support.orchestrator import APP, MODEL, ScriptedAnalyzer, orchestrated, terminal_of
from tests.support.stack import Stack

pytestmark = needs_bwrap
REPO = Path(__file__).resolve().parent.parent
SAMPLE_APPS = REPO / "generated" / "apps"

HELLO_APP = """
import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from app NUMBER"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("127.0.0.1", int(os.environ["BACKEND_PORT"])), Handler).serve_forever()
"""


def test_comprehensive_run_starts_the_sample_app_itself_gets_findings_and_leaves_nothing_running(
    tmp_path: Path, app_work_dir: Path, fake_llm: FakeLLM
) -> None:
    stack = Stack(
        tmp_path / "stack",
        apps_dir=SAMPLE_APPS,
        analyzers={"dynamic": 1, "performance": 1},
        extra_env={"ASSAY_APP_WORK_DIR": str(app_work_dir)},
    )
    dynamic_tools = ["reachability", "security-headers", "cookies", "cors", "sensitive-paths", "endpoints"]
    try:
        stack.start()
        task_id = stack.submit(
            model_slug="openai_codex-mini",
            app_number=1,
            analysis_type="comprehensive",
            tools=[*dynamic_tools, "load"],  # the two analyzers of a running app; no target_urls
            options={"load": {"requests": 40, "concurrency": 4, "thresholds": {"p99_ms": 0.001}}},
        )
        task = stack.wait_terminal(task_id, timeout_s=400)
    finally:
        stack.stop()
    assert task["status"] == "completed", (task["status_reason"], stack.log_tail())
    with sqlite3.connect(stack.database_file) as db:
        by_service = dict(
            db.execute(
                "select service, count(*) from findings where task_id = ? group by service", (task_id,)
            ).fetchall()
        )
        (result_dir,) = db.execute("select result_dir from tasks where task_id = ?", (task_id,)).fetchone()
    assert by_service.get("dynamic", 0) > 0 and by_service.get("performance", 0) > 0, by_service
    record = msgspec.json.decode(
        (stack.results_dir / result_dir / "services" / "app.json").read_bytes(), type=AppRun
    )
    assert record.error is None and record.ended == "stopped by Assay"
    assert record.exit_status is not None and record.sandbox.mode == "bwrap"
    assert "requirements.txt" in record.prepare_log or "reused from the cache" in record.prepare_log
    assert set(record.urls) == {"backend", "frontend"}  # the static frontend is served too
    assert record.processes["backend"][-1] == "app.py"
    assert record.output_tail, "the app's output is kept"
    assert app_processes(record) == []


SAMPLE_APP_IDS = [("anthropic_claude-haiku", 1), ("openai_codex-mini", 1), ("openai_codex-mini", 2)]
PROBES = ["reachability", "security-headers", "cookies", "cors"]  # each GETs the running app


def test_a_dynamic_batch_of_three_apps_starts_probes_and_stops_each_and_leaves_nothing_running(
    tmp_path: Path, app_work_dir: Path
) -> None:
    stack = Stack(
        tmp_path / "stack",
        apps_dir=SAMPLE_APPS,
        analyzers={"dynamic": 1},
        extra_env={"ASSAY_APP_WORK_DIR": str(app_work_dir), "ASSAY_APP_CONCURRENCY": "3"},
    )
    try:
        stack.start()
        response = httpx.post(
            f"{stack.gateway_url}/api/batches",
            json={"models": sorted({model for model, _ in SAMPLE_APP_IDS}), "analysis_types": ["dynamic"],
                  "tools": PROBES},
            headers=stack.headers,
            timeout=10,
        )  # fmt: skip
        assert response.status_code == 202, response.text
        batch = _wait_batch_finished(stack, response.json()["batch_id"], timeout_s=400)
    finally:
        stack.stop()
    tasks = {(task["model_slug"], task["app_number"]): task for task in batch["tasks"]}
    assert sorted(tasks) == SAMPLE_APP_IDS
    assert [task["status"] for task in tasks.values()] == ["completed"] * 3, (batch, stack.log_tail())
    records: dict[str, AppRun] = {}
    with sqlite3.connect(stack.database_file) as db:
        for task in tasks.values():
            task_id = task["task_id"]
            (result_dir,) = db.execute(
                "select result_dir from tasks where task_id = ?", (task_id,)
            ).fetchone()
            record = msgspec.json.decode(
                (stack.results_dir / result_dir / "services" / "app.json").read_bytes(), type=AppRun
            )
            assert record.error is None and record.started_at is not None, record.error
            assert record.ended == "stopped by Assay" and record.stopped_at is not None
            own_urls = tuple(record.urls.values())
            runs = dict(
                db.execute(
                    "select tool, status from tool_runs where task_id = ? and service = 'dynamic'", (task_id,)
                ).fetchall()
            )
            assert runs == {tool: "success" for tool in PROBES}, (task_id, runs)
            findings = db.execute(
                "select rule_id, path from findings where task_id = ? and service = 'dynamic'", (task_id,)
            ).fetchall()
            # the probes found something about this app, placed by its parts' names (never its ports), and it
            # answered them
            assert any(path and path.startswith(("backend:/", "frontend:/")) for _, path in findings), (
                task_id,
                findings,
            )
            assert not any(path and path.startswith(own_urls) for _, path in findings), (task_id, findings)
            assert "target-unreachable" not in {rule for rule, _ in findings}
            records[task_id] = record
    ports = [urlparse(record.urls["backend"]).port for record in records.values()]
    assert len(set(ports)) == 3, ports
    for record in records.values():
        assert app_processes(record) == []


def _wait_batch_finished(stack: Stack, batch_id: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = httpx.get(f"{stack.gateway_url}/api/batches/{batch_id}", headers=stack.headers, timeout=10)
        assert response.status_code == 200, response.text
        batch: dict[str, Any] = response.json()
        if batch["finished"]:
            return batch
        time.sleep(0.5)
    raise TimeoutError(f"batch {batch_id} not finished after {timeout_s} s; logs:\n{stack.log_tail()}")


async def test_the_orchestrator_hands_the_app_urls_to_the_analyzer_and_records_the_run(
    nats_server: EmbeddedNats, tmp_path: Path, app_work_dir: Path, spans: InMemorySpanExporter
) -> None:
    apps = tmp_path / "apps"
    make_app(apps, MODEL, APP, {"backend/app.py": HELLO_APP})
    peer = ScriptedAnalyzer("dynamic", ["result"])
    env = {"ASSAY_APPS_DIR": str(apps), "ASSAY_APP_WORK_DIR": str(app_work_dir)}
    async with orchestrated(nats_server.url, tmp_path, [peer], **env) as bench:
        request = await bench.request("dynamic")
        ending = terminal_of(await bench.events.terminal(request.task.id, timeout_s=60))
    assert isinstance(ending, TaskCompleted) and ending.status == "completed", ending
    record = ending.app
    assert record is not None and record.ended == "stopped by Assay"
    (frame,) = peer.analyzed
    assert frame.target_urls == [record.urls["backend"]]
    # the ports Assay chose stand in for the .env's, so that the targets policy admits them; the marker listener
    # of the SSRF check has one of its own in the sandbox
    canary = frame.app_ports.get("ASSAY_CANARY_PORT")
    assert frame.app_ports == {
        "BACKEND_PORT": urlparse(record.urls["backend"]).port,
        "ASSAY_CANARY_PORT": canary,
    }
    assert canary not in (None, urlparse(record.urls["backend"]).port)
    assert urlparse(frame.target_urls[0]).hostname == "127.0.0.1"
    assert app_processes(record) == []
    runs = [span for span in spans.get_finished_spans() if span.name == "app.run"]
    assert [span.attributes and span.attributes["assay.task_id"] for span in runs] == [request.task.id]


async def test_a_cancelled_task_stops_its_app_and_records_the_run(
    nats_server: EmbeddedNats, tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    make_app(apps, MODEL, APP, {"backend/app.py": HELLO_APP})
    peer = ScriptedAnalyzer("dynamic", ["hold"])
    env = {"ASSAY_APPS_DIR": str(apps), "ASSAY_APP_WORK_DIR": str(app_work_dir)}
    async with orchestrated(nats_server.url, tmp_path, [peer], **env) as bench:
        request = await bench.request("dynamic")
        await asyncio.wait_for(peer.analyze_received.wait(), 30)
        answered = await asyncio.to_thread(httpx.get, peer.analyzed[0].target_urls[0], trust_env=False)
        cancel = CancelRequest(task_id=request.task.id, reason="cancelled by the test")
        await bench.nc.publish(cancel_subject(request.task.id), encode(cancel))
        ending = terminal_of(await bench.events.terminal(request.task.id, timeout_s=30))
    assert answered.text == "hello from app NUMBER"  # the app ran while the analyzer held it
    assert isinstance(ending, TaskCancelled) and ending.reason == "cancelled by the test"
    assert ending.app is not None and ending.app.ended == "stopped by Assay"
    assert app_processes(ending.app) == []


async def test_an_app_stopped_by_the_process_limit_fails_the_task_with_the_reason(
    nats_server: EmbeddedNats, tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    make_app(apps, MODEL, APP, {"backend/app.py": "import os\nwhile True:\n    os.fork()\n"})
    peer = ScriptedAnalyzer("dynamic", ["result"])
    env = {"ASSAY_APPS_DIR": str(apps), "ASSAY_APP_WORK_DIR": str(app_work_dir), "ASSAY_APP_PROCESSES": "24"}
    async with orchestrated(nats_server.url, tmp_path, [peer], **env) as bench:
        request = await bench.request("dynamic")
        ending = terminal_of(await bench.events.terminal(request.task.id, timeout_s=60))
    assert isinstance(ending, TaskFailed)
    assert ending.reason.startswith("app did not start: backend ended with status 1"), ending.reason
    assert "Resource temporarily unavailable" in ending.reason
    assert peer.analyzed == []  # no analyzer was asked to probe an app that is not there
    assert ending.app is not None and ending.app.error == ending.reason
    assert app_processes(ending.app) == []


async def test_several_apps_run_at_once_within_the_budget_each_on_its_own_ports(
    tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    for number in (1, 2, 3):
        make_app(apps, "budget-test", number, {"backend/app.py": HELLO_APP.replace("NUMBER", str(number))})
    settings = runner_settings(tmp_path, apps, app_work_dir, ASSAY_APP_CONCURRENCY="2")
    runner = AppRunner(settings)
    running = 0
    most = 0
    answers: dict[int, str] = {}
    urls: dict[int, str] = {}

    async def run(number: int) -> AppRun:
        async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            async with httpx.AsyncClient(trust_env=False) as client:
                answers[number] = (await client.get(request.target_urls[0])).text
            urls[number] = request.target_urls[0]
            await asyncio.sleep(0.5)  # long enough for the others to start if the budget allowed
            running -= 1

        slot = AppSlot()
        request = app_request(f"task_00000000000{number}", "budget-test", number)
        await runner.run(request, slot, analyze)
        assert slot.record is not None
        return slot.record

    records = await asyncio.gather(*(run(number) for number in (1, 2, 3)))
    assert answers == {number: f"hello from app {number}" for number in (1, 2, 3)}
    assert most == 2  # two at once: the budget, and no more
    assert len({urlparse(url).port for url in urls.values()}) == 3
    for record in records:
        assert record.ended == "stopped by Assay"
        assert app_processes(record) == []


ORCHESTRATOR_STAND_IN = """
import asyncio
from services.orchestrator.apps.runner import AppRunner, AppSlot
from shared.operations.config import load_settings
from tests.support.apps import app_request


async def main():
    request = app_request("task_0000000000dd", "budget-test", 1)

    async def analyze(request, ports):
        print(request.target_urls[0], flush=True)
        await asyncio.sleep(3600)

    await AppRunner(load_settings()).run(request, AppSlot(), analyze)


asyncio.run(main())
"""


def test_the_app_ends_when_the_orchestrator_is_killed(tmp_path: Path, app_work_dir: Path) -> None:
    apps = tmp_path / "apps"
    make_app(apps, "budget-test", 1, {"backend/app.py": HELLO_APP})
    env = {
        **os.environ,
        "ASSAY_VAR_DIR": str(tmp_path / "var"),
        "ASSAY_APPS_DIR": str(apps),
        "ASSAY_APP_WORK_DIR": str(app_work_dir),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", ORCHESTRATOR_STAND_IN], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    assert httpx.get(url, trust_env=False).text == "hello from app NUMBER"
    port = url.rsplit(":", 1)[1]
    record = AppRun(run_id="none", source_hash="", sandbox=sandbox_settings(load_settings(env)), command=[])
    record = msgspec.structs.replace(record, urls={"backend": url})
    assert app_processes(record), f"no process has BACKEND_PORT={port} while the app answers"
    process.kill()  # SIGKILL: no clean-up code runs; bwrap's --die-with-parent must end the sandbox
    process.wait()
    deadline = time.monotonic() + 10
    while app_processes(record) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert app_processes(record) == []


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed: frontends get no node_modules")
async def test_a_frontend_gets_its_node_modules_from_npm_and_no_install_script_runs(
    tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    package = {
        "name": "frontend",
        "version": "1.0.0",
        "private": True,
        "dependencies": {"is-number": "7.0.0"},
        "scripts": {"postinstall": "touch postinstall-ran"},
    }
    files = {
        "backend/app.py": HELLO_APP,
        "frontend/index.html": "<html>frontend</html>",
        "frontend/package.json": json.dumps(package),
    }
    make_app(apps, "npm-test", 1, files)
    settings = runner_settings(tmp_path, apps, app_work_dir)
    slot = AppSlot()
    served: list[str] = []

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            frontend = request.target_urls[1]
            served.append((await client.get(f"{frontend}/node_modules/is-number/package.json")).text)

    request = app_request("task_0000000000cc", "npm-test", 1)
    await AppRunner(settings).run(request, slot, analyze)
    assert json.loads(served[0])["name"] == "is-number"
    assert not await asyncio.to_thread(_install_scripts_ran, app_work_dir)
    assert slot.record is not None and "--ignore-scripts" in slot.record.prepare_log


def _install_scripts_ran(work_dir: Path) -> list[Path]:
    return list(work_dir.glob("cache/node-*/postinstall-ran"))
