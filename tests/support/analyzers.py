"""Processes the dynamic and performance analyzer tests start for real: a sample app's Flask backend and an
analyzer service, each on a free loopback port, plus a protocol v1 client. (No tests here: shared by
test_dynamic_*.py and test_performance_*.py.)"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from websockets.asyncio.client import connect
from websockets.sync.client import connect as connect_sync

from shared.results.findings import Finding
from shared.wire.protocol import (
    MAX_FRAME_BYTES,
    AnalyzeFrame,
    ErrorFrame,
    ResultFrame,
    ServiceResult,
    analyzer_auth,
    decode_analyzer_frame,
    encode_frame,
)
from shared.wire.tasks import TaskRef
from tests.support.ports import free_port
from tests.support.processes import wait_for_port
from tests.support.static import TOOL_CACHE_DIR

REPO = Path(__file__).resolve().parents[2]
ANALYZER_TOKEN = "analyzer-token-of-the-tests"  # what the tests' analyzers require in the handshake
AUTH = analyzer_auth(ANALYZER_TOKEN)
SAMPLE_APPS = REPO / "generated" / "apps"


def _wait_or_stop(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once `process` listens on `port` (its own listener, however long its imports take on a loaded
    machine); stop it if it never does, so a failed start leaves nothing running."""
    try:
        wait_for_port(port, process, log)
    except BaseException:
        stop(process)
        raise


def start_backend(app: str, folder: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """Start `generated/apps/<app>/backend/app.py` on a free port; its SQLite file goes under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "backend.log"
    env = {**os.environ, "BACKEND_PORT": str(port), "TMPDIR": str(folder)}
    process = subprocess.Popen(
        [sys.executable, str(SAMPLE_APPS / app / "backend" / "app.py")],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _wait_or_stop(port, process, log)
    return f"http://127.0.0.1:{port}", process


def start_analyzer(
    service: str, folder: Path, apps_dir: Path = SAMPLE_APPS, extra_env: dict[str, str] | None = None
) -> tuple[str, subprocess.Popen[bytes]]:
    """`python -m services.analyzers.<service> --port <free>` with its own trace and var folders."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "analyzer.log"
    env = {
        **os.environ,
        "ASSAY_APPS_DIR": str(apps_dir),
        "ASSAY_TRACE_DIR": str(folder / "traces"),
        "ASSAY_VAR_DIR": str(folder / "var"),
        "ASSAY_TOOL_CACHE_DIR": TOOL_CACHE_DIR,
        "ASSAY_ANALYZER_TOKEN": ANALYZER_TOKEN,
        **(extra_env or {}),
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env.pop("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None)
    process = subprocess.Popen(
        [sys.executable, "-m", f"services.analyzers.{service}", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    _wait_or_stop(port, process, log)
    return f"ws://127.0.0.1:{port}", process


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def analyze_frame(
    request_id: str,
    *,
    model: str = "openai_codex-mini",
    app: int = 1,
    task_id: str = "task_00000000abcd",
    tools: list[str] | None = None,
    target_urls: list[str] | None = None,
    options: dict[str, Any] | None = None,
    deadline_s: float = 900.0,
    traceparent: str | None = None,
) -> AnalyzeFrame:
    """An analyze frame of a static analysis of `model`/app`app`, as the orchestrator sends it."""
    return AnalyzeFrame(
        id=request_id,
        task=TaskRef(id=task_id, model_slug=model, app_number=app, analysis_type="static"),
        tools=tools or [],
        target_urls=target_urls or [],
        options=options or {},
        deadline_s=deadline_s,
        traceparent=traceparent,
    )


def run_sync(url: str, frame: AnalyzeFrame, timeout_s: float = 60.0) -> list[msgspec.Struct]:
    """Send one analyze frame and return every frame of the run, the terminal one last (blocking client)."""
    frames: list[msgspec.Struct] = []
    deadline = time.monotonic() + timeout_s
    with connect_sync(url, max_size=MAX_FRAME_BYTES, additional_headers=AUTH) as ws:
        ws.send(encode_frame(frame))
        while True:
            received = decode_analyzer_frame(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if getattr(received, "id", None) != frame.id:
                continue
            frames.append(received)
            if isinstance(received, (ResultFrame, ErrorFrame)):
                return frames


def result_of(url: str, frame: AnalyzeFrame, timeout_s: float = 60.0) -> ServiceResult:
    """The ServiceResult of one run; fails the test when the run ends with an error frame."""
    last = run_sync(url, frame, timeout_s)[-1]
    assert isinstance(last, ResultFrame), f"run ended with {last}"
    return last.result


async def result_async(url: str, frame: AnalyzeFrame, timeout_s: float = 30.0) -> ServiceResult:
    async with connect(url, max_size=MAX_FRAME_BYTES, additional_headers=AUTH) as ws:
        await ws.send(encode_frame(frame))
        async with asyncio.timeout(timeout_s):
            async for message in ws:
                received = decode_analyzer_frame(message)
                if getattr(received, "id", None) == frame.id and isinstance(
                    received, (ResultFrame, ErrorFrame)
                ):
                    assert isinstance(received, ResultFrame), f"run ended with {received}"
                    return received.result
    raise AssertionError("connection closed before a terminal frame")


@pytest.fixture(scope="module")
def notes_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """openai_codex-mini/app1 running: serves /.env, sets a cookie without flags, implements every endpoint."""
    url, process = start_backend("openai_codex-mini/app1", tmp_path_factory.mktemp("notes"))
    yield url
    stop(process)


def findings_by_rule(result: ServiceResult, tool: str) -> dict[str, list[Finding]]:
    """`tool`'s findings in `result`, by rule id."""
    found: dict[str, list[Finding]] = {}
    for finding in result.findings:
        if finding.tool == tool:
            found.setdefault(finding.rule_id, []).append(finding)
    return found
