"""Harness for the gateway tests: the app served by uvicorn on a loopback port, a test connection to look at
what it published, and rows written through the models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import nats
import uvicorn
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from services.gateway.app import create_app
from shared.config import Settings, load_settings
from shared.database import create_engine, migrate, sessions
from shared.findings import fingerprint
from shared.models import FindingRow, ServiceRun, Task, ToolRunRow
from shared.natsd import free_port
from shared.streams import tasks_bucket
from shared.subjects import REQUESTS_STREAM

MODEL, APP = "openai_codex-mini", 1


@dataclass
class Gateway:
    url: str
    settings: Settings
    http: httpx.AsyncClient
    nc: Client  # the test's own connection, to look at what the gateway published
    js: JetStreamContext
    tasks: KeyValue

    async def submit(self, **overrides: object) -> httpx.Response:
        body = {"model_slug": MODEL, "app_number": APP, "analysis_type": "static", **overrides}
        return await self.http.post("/api/analysis/run", json=body)

    async def requests_in_stream(self) -> int:
        return (await self.js.stream_info(REQUESTS_STREAM)).state.messages


def gateway_settings(tmp_path: Path, nats_url: str, database_url: str) -> Settings:
    apps = tmp_path / "apps"
    (apps / MODEL / f"app{APP}" / "backend").mkdir(parents=True, exist_ok=True)
    return load_settings(
        {
            "ASSAY_NATS_URL": nats_url,
            "ASSAY_DATABASE_URL": database_url,
            "ASSAY_APPS_DIR": str(apps),
            "ASSAY_VAR_DIR": str(tmp_path / "var"),
            "ASSAY_RESULTS_DIR": str(tmp_path / "results"),
            "ASSAY_GATEWAY_URL": f"http://127.0.0.1:{free_port()}",
        }
    )


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[str]:
    """The gateway app served by uvicorn in this event loop, on the port of settings.gateway_url."""
    port = int(settings.gateway_url.rsplit(":", 1)[1])
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # raises what stopped it
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.02)
    try:
        yield settings.gateway_url
    finally:
        server.should_exit = True
        await serving


@asynccontextmanager
async def gateway_for(settings: Settings) -> AsyncIterator[Gateway]:
    async with running_gateway(settings) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        assert settings.nats_url, "a gateway under test needs its NATS server's URL"
        nc = await nats.connect(settings.nats_url)
        js = nc.jetstream()
        try:
            yield Gateway(url, settings, http, nc, js, await tasks_bucket(js))
        finally:
            await nc.close()


async def migrate_database(database_url: str) -> str:
    engine = create_engine(database_url)
    await migrate(engine)
    await engine.dispose()
    return database_url


async def insert_task(database_url: str, task_id: str, status: str = "completed") -> None:
    """A task as the persister records it: the row, one service run, two tool runs and three findings."""
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    async with sessions(engine)() as session, session.begin():
        session.add(
            Task(
                task_id=task_id,
                model_slug=MODEL,
                app_number=APP,
                analysis_type="static",
                priority="normal",
                tools=["bandit", "ruff"],
                services=["static"],
                status=status,
                status_reason=None,
                progress_percent=100.0,
                progress_message="done",
                findings_count=3,
                severity_breakdown={"high": 1, "low": 2},
                result_dir=f"{MODEL}/app{APP}/task_static_x",
                trace_id="ab" * 16,
                worker="orchestrator-1",
                created_at=now - timedelta(seconds=5),
                started_at=now - timedelta(seconds=4),
                finished_at=now,
                updated_at=now,
            )
        )
        await session.flush()
        session.add(
            ServiceRun(
                task_id=task_id,
                service="static",
                status="success",
                error=None,
                findings_count=3,
                event_id="e" * 32,
                recorded_at=now,
            )
        )
        for tool, count in (("bandit", 1), ("ruff", 2)):
            session.add(
                ToolRunRow(
                    task_id=task_id,
                    service="static",
                    tool=tool,
                    status="success",
                    version="1.0",
                    command=[tool, "."],
                    exit_code=1,
                    duration_s=0.5,
                    files_analyzed=4,
                    findings_count=count,
                )
            )
        for tool, rule, severity, line in (
            ("bandit", "B105", "high", 3),
            ("ruff", "F401", "low", 1),
            ("ruff", "E711", "low", 9),
        ):
            session.add(
                FindingRow(
                    task_id=task_id,
                    service="static",
                    tool=tool,
                    rule_id=rule,
                    severity=severity,
                    category="quality",
                    message=f"{rule} here",
                    path="backend/app.py",
                    line=line,
                    fingerprint=fingerprint(tool, rule, "backend/app.py", f"line {line}"),
                )
            )
    await engine.dispose()
