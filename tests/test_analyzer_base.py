"""The analyzer server base: protocol v1 frames, heartbeats, cancellation that kills tool process groups."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from services.analyzers.base.analyzer import Analyzer
from services.analyzers.base.job import Job
from services.analyzers.base.main import serve_analyzer
from services.analyzers.base.tool import ToolOutput
from shared.operations.config import Settings, load_settings
from shared.results.findings import Finding, ToolRun, ToolStatus
from shared.wire.protocol import (
    CancelFrame,
    ErrorFrame,
    HealthFrame,
    HealthReport,
    HeartbeatFrame,
    ProgressFrame,
    ResultFrame,
    ShuttingDownFrame,
    ToolHealth,
    decode_analyzer_frame,
    encode_frame,
)
from tests.support.analyzers import ANALYZER_TOKEN, AUTH, analyze_frame
from tests.support.ports import free_port

# A tool process that starts a grandchild, so the test can see that the whole process group dies.
SPAWNER = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep({s})']); time.sleep({s})"


class SleepyTool:
    """A real subprocess tool that runs `seconds` (by default until killed); writes its process group id to a file."""

    def __init__(self, pgid_file: Path, seconds: float = 60, name: str = "sleepy") -> None:
        self.pgid_file = pgid_file
        self.seconds = seconds
        self.name = name

    async def health(self, settings: Settings) -> ToolHealth:
        del settings
        return ToolHealth(name=self.name, available=True, version="1.0")

    async def run(self, job: Job) -> ToolOutput:
        argv = [
            sys.executable,
            "-c",
            f"import os; open({str(self.pgid_file)!r}, 'w').write(str(os.getpgrp())); "
            + SPAWNER.format(s=self.seconds),
        ]
        outcome = await job.run_process(self.name, argv)
        status: ToolStatus = "timeout" if outcome.timed_out else "success"
        return ToolOutput(
            run=ToolRun(tool=self.name, status=status, command=argv, exit_code=outcome.exit_code)
        )


class EchoTool:
    """A real subprocess tool that reports one finding per line it prints."""

    name = "echo"

    async def health(self, settings: Settings) -> ToolHealth:
        del settings
        return ToolHealth(name=self.name, available=True, version="1.0")

    async def run(self, job: Job) -> ToolOutput:
        argv = [sys.executable, "-c", "print('a'); print('b')"]
        outcome = await job.run_process(self.name, argv)
        findings = [
            Finding(tool=self.name, rule_id=f"line-{text}", severity="low", message=text)
            for text in outcome.stdout.split()
        ]
        run = ToolRun(
            tool=self.name,
            status="success",
            command=argv,
            exit_code=outcome.exit_code,
            findings_count=len(findings),
        )
        return ToolOutput(run=run, findings=findings, raw_output=outcome.stdout)


class MissingTool:
    name = "missing"

    async def health(self, settings: Settings) -> ToolHealth:
        del settings
        return ToolHealth(name=self.name, available=False, reason="not installed")

    async def run(self, job: Job) -> ToolOutput:
        raise AssertionError("a tool that is not available must not be run")


async def start_server(
    tmp_path: Path, tools: list[Any], stop: asyncio.Event, **env: str
) -> tuple[str, asyncio.Task[None]]:
    """A real analyzer server with `tools` over an apps root holding model-a/app1, listening; its URL and task."""
    (tmp_path / "apps" / "model-a" / "app1").mkdir(parents=True)
    settings = load_settings(
        {
            "ASSAY_APPS_DIR": str(tmp_path / "apps"),
            "ASSAY_VAR_DIR": str(tmp_path / "var"),
            "ASSAY_ANALYZER_TOKEN": ANALYZER_TOKEN,
            **env,
        }
    )
    port = free_port()
    server = asyncio.create_task(
        serve_analyzer(Analyzer(service="test", tools=tools), settings, "127.0.0.1", port, stop)
    )
    url = f"ws://127.0.0.1:{port}"
    for _ in range(100):
        try:
            async with connect(url, additional_headers=AUTH):
                break
        except OSError:
            await asyncio.sleep(0.05)
    return url, server


@pytest.fixture
async def analyzer_url(tmp_path: Path) -> AsyncIterator[str]:
    stop = asyncio.Event()
    tools = [EchoTool(), SleepyTool(tmp_path / "pgid"), MissingTool()]
    url, server = await start_server(tmp_path, tools, stop)
    yield url
    stop.set()
    await server


def analyze(request_id: str, tools: list[str], options: dict[str, Any] | None = None) -> str:
    return encode_frame(analyze_frame(request_id, model="model-a", tools=tools, options=options))


async def next_frame(ws: ClientConnection, timeout: float = 10.0) -> msgspec.Struct:
    return decode_analyzer_frame(await asyncio.wait_for(ws.recv(), timeout))


async def until(ws: ClientConnection, kind: type, timeout: float = 10.0) -> list[msgspec.Struct]:
    """Frames up to and including the first of `kind`."""
    seen: list[msgspec.Struct] = []
    deadline = time.monotonic() + timeout
    while True:
        frame = await next_frame(ws, max(0.1, deadline - time.monotonic()))
        seen.append(frame)
        if isinstance(frame, kind):
            return seen


def group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


async def test_result_frame_carries_findings_and_skips_missing_tool(analyzer_url: str) -> None:
    async with connect(analyzer_url, additional_headers=AUTH) as ws:
        await ws.send(analyze("r1", ["echo", "missing"]))
        frames = await until(ws, ResultFrame)
    result = frames[-1]
    assert isinstance(result, ResultFrame) and result.id == "r1"
    assert sorted(f.rule_id for f in result.result.findings) == ["line-a", "line-b"]
    runs = {run.tool: run for run in result.result.tools}
    assert runs["missing"].status == "skipped" and runs["missing"].reason == "not installed"
    assert result.result.status == "success"
    assert result.result.sarif["version"] == "2.1.0"
    assert any(isinstance(f, ProgressFrame) and f.tool == "echo" for f in frames)
    assert all(getattr(frame, "id", "r1") == "r1" for frame in frames)


async def test_cancel_kills_the_tool_process_group_within_two_seconds(
    analyzer_url: str, tmp_path: Path
) -> None:
    pgid_file = tmp_path / "pgid"
    async with connect(analyzer_url, additional_headers=AUTH) as ws:
        await ws.send(analyze("r2", ["sleepy"]))
        for _ in range(200):
            if pgid_file.exists() and pgid_file.read_text():
                break
            await asyncio.sleep(0.05)
        pgid = int(pgid_file.read_text())
        await asyncio.sleep(0.3)  # let the grandchild start
        assert group_alive(pgid)
        started = time.monotonic()
        await ws.send(encode_frame(CancelFrame(id="r2")))
        frames = await until(ws, ResultFrame, timeout=2.0)
        answer = frames[-1]
        assert isinstance(answer, ResultFrame) and answer.result.status == "cancelled"
        assert [(run.tool, run.status) for run in answer.result.tools] == [("sleepy", "cancelled")]
        while group_alive(pgid) and time.monotonic() - started < 2.0:
            await asyncio.sleep(0.05)
        assert not group_alive(pgid), "tool processes still running 2 s after cancel"


async def test_a_cancel_keeps_the_results_of_the_tools_that_had_finished(
    analyzer_url: str, tmp_path: Path
) -> None:
    async with connect(analyzer_url, additional_headers=AUTH) as ws:
        await ws.send(analyze("r5", ["echo", "sleepy"]))
        frames = await until(ws, ProgressFrame, timeout=10.0)
        while not any(
            isinstance(f, ProgressFrame) and f.tool == "echo" and f.stage == "success" for f in frames
        ):
            frames.append(await next_frame(ws))
        await ws.send(encode_frame(CancelFrame(id="r5")))
        answer = (await until(ws, ResultFrame, timeout=5.0))[-1]
    assert isinstance(answer, ResultFrame) and answer.id == "r5"
    result = answer.result
    assert result.status == "cancelled"
    assert {run.tool: run.status for run in result.tools} == {"echo": "success", "sleepy": "cancelled"}
    assert sorted(f.rule_id for f in result.findings) == ["line-a", "line-b"]
    assert result.raw_outputs == {"echo": "a\nb\n"}
    assert result.error is not None and "sleepy" in result.error


async def test_heartbeats_while_a_tool_runs_and_timeout_is_reported(analyzer_url: str) -> None:
    async with connect(analyzer_url, additional_headers=AUTH) as ws:
        await ws.send(analyze("r3", ["sleepy"], options={"timeouts": {"sleepy": 2.5}}))
        frames = await until(ws, ResultFrame, timeout=10)
    beats = [f for f in frames if isinstance(f, HeartbeatFrame)]
    assert len(beats) >= 2 and all(b.id == "r3" for b in beats)
    result = frames[-1].result  # type: ignore[attr-defined]
    assert result.tools[0].status == "timeout"
    assert result.status == "failed"


async def test_health_lists_every_tool(analyzer_url: str) -> None:
    async with connect(analyzer_url, additional_headers=AUTH) as ws:
        await ws.send(encode_frame(HealthFrame(id="h")))
        report = await next_frame(ws)
    assert isinstance(report, HealthReport) and report.service == "test"
    assert {t.name: t.available for t in report.tools} == {"echo": True, "sleepy": True, "missing": False}


@pytest.mark.parametrize(
    ("frame", "code", "echoed_id"),
    [
        (analyze("x", ["nope"]), "bad_request", "x"),  # unknown tool
        ('{"type":"analyze","id":"x"}', "bad_request", "x"),  # a known frame missing its fields
        (
            encode_frame(analyze_frame("x", model="model-a", app=7)),
            "unknown_app",
            "x",
        ),
        (
            encode_frame(analyze_frame("x", model="../etc")),
            "bad_request",
            "x",
        ),
    ],
)
async def test_bad_requests_get_an_error_frame(
    analyzer_url: str, frame: str, code: str, echoed_id: str
) -> None:
    async with connect(analyzer_url, additional_headers=AUTH) as ws:
        await ws.send(frame)
        answer = (await until(ws, ErrorFrame))[-1]
    assert answer.code == code and answer.id == echoed_id  # type: ignore[attr-defined]


DEEP = 100_000  # far past the nesting msgspec decodes


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        ('{"type":"analyze","id":"x"', 1007, "not a JSON frame"),
        (b"\xff\xfe", 1007, "not a JSON frame"),
        ('{"type":"launch","id":"x"}', 1008, "not a known frame"),
        ("[1, 2]", 1008, "not a known frame"),
        ('{"type":"health","id":"x","o":' + "[" * DEEP + "]" * DEEP + "}", 1008, "nested too deeply"),
        ('{"type":"analyze","id":"x","options":' + "[" * DEEP + "]" * DEEP + "}", 1008, "nested too deeply"),
        (
            '{"type":"analyze","id":"x","options":' + '{"a":' * DEEP + "1" + "}" * DEEP + "}",
            1008,
            "nested too",
        ),
        ('{"type":"health","id":' + '{"a":' * DEEP + "1" + "}" * DEEP + "}", 1008, "not a known frame"),
    ],
    ids=[
        "cut-short",
        "not-utf8",
        "unknown-type",
        "array",
        "deep-unknown-field",
        "deep-options-array",
        "deep-options-object",
        "deep-id",
    ],
)
async def test_a_protocol_violation_closes_the_connection_with_its_code_and_reason(
    analyzer_url: str, frame: str | bytes, code: int, reason: str
) -> None:
    async with connect(analyzer_url, additional_headers=AUTH, max_size=None) as ws:
        await ws.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code and reason in closed.value.rcvd.reason
    async with connect(analyzer_url, additional_headers=AUTH) as ws:  # the server itself is unharmed
        await ws.send(encode_frame(HealthFrame(id="h")))
        assert isinstance(await next_frame(ws), HealthReport)


async def test_a_retry_on_a_new_connection_survives_the_old_connection_closing(analyzer_url: str) -> None:
    """The orchestrator retries with the same id; the first connection going away must not cancel the retry."""
    first = await connect(analyzer_url, additional_headers=AUTH)
    await first.send(analyze("same", ["sleepy"]))
    await until(first, ProgressFrame)
    async with connect(analyzer_url, additional_headers=AUTH) as second:
        await second.send(analyze("same", ["sleepy"], options={"timeouts": {"sleepy": 1.5}}))
        await until(second, ProgressFrame)
        await first.close()
        frames = await until(second, ResultFrame, timeout=10)
    assert not any(isinstance(frame, ErrorFrame) for frame in frames)
    assert frames[-1].result.tools[0].status == "timeout"  # type: ignore[attr-defined]


async def test_a_stopping_analyzer_finishes_runs_within_its_grace_refuses_new_ones_and_hands_back_the_rest(
    tmp_path: Path,
) -> None:
    pgid_file = tmp_path / "pgid"
    tools = [SleepyTool(tmp_path / "nap-pgid", seconds=1, name="nap"), SleepyTool(pgid_file)]
    stop = asyncio.Event()
    url, server = await start_server(tmp_path, tools, stop, ASSAY_ANALYZER_GRACE_S="3")
    async with (
        connect(url, additional_headers=AUTH) as short,
        connect(url, additional_headers=AUTH) as long,
        connect(url, additional_headers=AUTH) as late,
    ):
        await long.send(analyze("long", ["sleepy"]))
        while not (pgid_file.exists() and pgid_file.read_text()):
            await asyncio.sleep(0.05)
        pgid = int(pgid_file.read_text())
        await short.send(analyze("short", ["nap"]))
        await until(short, ProgressFrame)  # the nap has started
        stop.set()  # what SIGTERM does
        reports: list[HealthReport] = []
        while not (reports and reports[-1].draining) and len(reports) < 50:  # noticed on the loop's next turn
            await asyncio.sleep(0.1 if reports else 0)
            await late.send(encode_frame(HealthFrame(id="h")))
            report = await next_frame(late)
            assert isinstance(report, HealthReport)
            reports.append(report)
        assert reports[-1].draining and reports[-1].active_runs == 2
        await late.send(analyze("late", ["nap"]))
        refused = (await until(late, ShuttingDownFrame))[-1]
        assert isinstance(refused, ShuttingDownFrame) and refused.id == "late"
        finished = (await until(short, ResultFrame))[-1]  # within the grace period: its result
        assert isinstance(finished, ResultFrame) and finished.result.status == "success"
        handed = await until(long, ShuttingDownFrame, timeout=10)  # past it: handed back, no outcome
        assert not any(isinstance(frame, (ResultFrame, ErrorFrame)) for frame in handed)
        assert "shutting down" in handed[-1].message  # type: ignore[attr-defined]
    await asyncio.wait_for(server, 10)
    stopped = time.monotonic()
    # Killed by now; the grandchild is reaped a moment later.
    while group_alive(pgid) and time.monotonic() - stopped < 5.0:
        await asyncio.sleep(0.05)
    assert not group_alive(pgid), "a handed-back run's tools still run 5 s after the analyzer stopped"
