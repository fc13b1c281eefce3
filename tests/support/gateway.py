"""Harness for the gateway tests: the app served by uvicorn on a loopback port, a test connection to look at
what it published, and rows written through the models."""

from __future__ import annotations

import asyncio
import os
import sys
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
from shared.jetstream.streams import tasks_bucket
from shared.operations.config import Settings, load_settings
from shared.results.findings import fingerprint
from shared.store.database import create_engine, sessions
from shared.store.models import FindingRow, ServiceRun, Task, ToolRunRow
from shared.store.tokens import Scope, create_token
from shared.wire.subjects import REQUESTS_STREAM
from tests.support.ports import free_port
from tests.support.template_db import migrated

MODEL, APP = "openai_codex-mini", 1
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Gateway:
    url: str
    settings: Settings
    http: httpx.AsyncClient
    nc: Client  # the test's own connection, to look at what the gateway published
    js: JetStreamContext
    tasks: KeyValue
    token: str | None  # the admin token `http` sends (None: the gateway runs with ASSAY_AUTH=off)

    async def submit(self, **overrides: object) -> httpx.Response:
        body = {"model_slug": MODEL, "app_number": APP, "analysis_type": "static", **overrides}
        return await self.http.post("/api/analysis/run", json=body)

    async def requests_in_stream(self) -> int:
        return (await self.js.stream_info(REQUESTS_STREAM)).state.messages


def gateway_settings(tmp_path: Path, nats_url: str, database_url: str, *, auth: bool = True) -> Settings:
    """Settings of a test gateway; `auth=False` only for tests about something else that cannot have a token
    (a database without the tokens table)."""
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
            "ASSAY_AUTH": "on" if auth else "off",
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
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


async def issue_token(database_url: str, name: str, scope: Scope = "admin") -> str:
    """A token stored in the database (migrated first, as the gateway would), as `assay token create --direct`
    makes one."""
    await migrated(database_url)
    engine = create_engine(database_url)
    try:
        token, _row = await create_token(sessions(engine), name, scope)
    finally:
        await engine.dispose()
    return token


async def run_cli(gateway: Gateway, *args: str, token: str | None = None) -> tuple[int, str, str]:
    """Run `assay …` in a subprocess against the gateway (served by this test's event loop, which must keep
    running) with `token` as ASSAY_TOKEN (default: the gateway's admin token); (exit code, stdout, stderr)."""
    env = {
        **os.environ,
        "ASSAY_GATEWAY_URL": gateway.url,
        "ASSAY_RESULTS_DIR": str(gateway.settings.results_dir),
        "ASSAY_DATABASE_URL": gateway.settings.database_url,
        "ASSAY_TOKEN": token or gateway.token or "",
        "XDG_CONFIG_HOME": str(gateway.settings.config_dir.parent),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def gateway_for(settings: Settings) -> AsyncIterator[Gateway]:
    """The gateway running, with a client that sends an admin token (when the gateway wants tokens)."""
    token = await issue_token(settings.database_url, "tests") if settings.auth else None
    headers = bearer(token) if token else {}
    async with (
        running_gateway(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=10, headers=headers) as http,
    ):
        assert settings.nats_url, "a gateway under test needs its NATS server's URL"
        nc = await nats.connect(settings.nats_url)
        js = nc.jetstream()
        try:
            yield Gateway(url, settings, http, nc, js, await tasks_bucket(js), token)
        finally:
            await nc.close()


async def migrate_database(database_url: str) -> str:
    """`database_url` migrated: a copy of the test process's migrated template for a new SQLite file."""
    return await migrated(database_url)


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
