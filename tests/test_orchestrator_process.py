"""`python -m services.orchestrator` as its own process: it runs a task, and on SIGTERM stops cleanly — the analyzer
is told to cancel, the request goes back to JetStream, the spans are flushed to the span file."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from shared.jetstream.natsd import EmbeddedNats
from shared.wire.messages import TaskCompleted
from tests.support.orchestrator import ScriptedAnalyzer, analyzers, bench_for, terminal_of

REPO = Path(__file__).resolve().parent.parent


async def test_sigterm_cancels_the_analyzer_hands_the_request_back_and_flushes_spans(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["hold", "result"])
    env = {
        **os.environ,
        "ASSAY_NATS_URL": nats_server.url,
        "ASSAY_VAR_DIR": str(tmp_path / "var"),
        "ASSAY_TRACE_DIR": str(tmp_path / "traces"),
        "ASSAY_STATIC_URLS": peer.url,
        "ASSAY_ACK_WAIT_S": "30",
    }
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        env.pop(name, None)
    async with analyzers(peer), bench_for(nats_server.url) as bench:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.orchestrator",
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            request = await bench.request("static")
            await asyncio.wait_for(peer.analyze_received.wait(), 15)
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 15)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == 0, stderr.decode()[-3000:]
        assert [frame.id for frame in peer.cancels] == [f"{request.task.id}:static"]
        # The request was nak'd: a replica started now gets it at once, not after the 30 s ack_wait.
        second = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.orchestrator",
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            events = await bench.events.terminal(request.task.id, timeout_s=15)
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.wait(), 15)
    ending = terminal_of(events)
    assert isinstance(ending, TaskCompleted) and ending.status == "completed"
    spans = [
        json.loads(line)
        for file in (tmp_path / "traces").glob("orchestrator-*.jsonl")
        for line in file.read_text().splitlines()
    ]
    names = {span["name"] for span in spans}
    assert {
        "process assay.requests.normal",
        "analyze static",
        f"publish assay.events.{request.task.id}.started",
    } <= names
    assert all(span["service"] == "orchestrator" for span in spans)
