"""`python -m services.persister` as its own process: it records a task, stops cleanly on SIGTERM and flushes its
spans to the local span file."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from shared.jetstream.connection import connect
from shared.jetstream.natsd import EmbeddedNats
from shared.jetstream.streams import declare_streams
from shared.operations.config import load_settings
from shared.store.database import create_engine
from tests.support.persister import REPO_ROOT, Harness, persister_ready, publish_scenario, scenario


async def test_entry_point_persists_a_task_and_stops_cleanly_on_sigterm(
    nats_server: EmbeddedNats, database_url: str, tmp_path: Path
) -> None:
    trace_dir = tmp_path / "traces"
    env = {
        **os.environ,
        "ASSAY_NATS_URL": nats_server.url,
        "ASSAY_DATABASE_URL": database_url,
        "ASSAY_RESULTS_DIR": str(tmp_path / "results"),
        "ASSAY_VAR_DIR": str(tmp_path / "var"),
        "ASSAY_TRACE_DIR": str(trace_dir),
    }
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        env.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.persister",
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    client = await connect(nats_server.url, "test-client")
    engine = create_engine(database_url)
    try:
        js = client.jetstream()
        await declare_streams(js)
        await persister_ready(js)
        harness = Harness(client=client, js=js, engine=engine, settings=load_settings(env))
        case = scenario()
        await publish_scenario(harness, case)
        task = await harness.wait_status(case.request.task.id, "completed", timeout_s=30)
        assert task.findings_count == 250 and task.result_dir

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
        stderr = (await process.stderr.read()).decode()  # type: ignore[union-attr]
        lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
        assert any(line.get("msg") == "persister stopped" for line in lines), stderr[-2000:]
        assert any(line.get("task_id") == case.request.task.id for line in lines)  # logs carry the task id

        spans = [
            json.loads(line)
            for file in trace_dir.glob("persister-*.jsonl")
            for line in file.read_text().splitlines()
        ]
        names = {span["name"] for span in spans if span["trace_id"] == case.trace_id}
        assert f"process assay.events.{case.request.task.id}.completed" in names
        assert {"results.write", "db.write outcome"} <= names
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await client.close()
        await engine.dispose()
