"""What the persister tests share: the persister running in-process against a real nats-server and a real database,
a publishing client, builders of real messages, and polling helpers. (No tests here: used by test_persister_*.py.)"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.persister.service import run
from shared.jetstream.connection import connect
from shared.jetstream.streams import declare_streams
from shared.operations.config import Settings, load_settings
from shared.results.findings import SEVERITIES, Finding, ToolRun, fingerprint
from shared.results.sarif import sarif_for
from shared.store.database import create_engine, sessions
from shared.store.models import FindingRow, ServiceRun, Task, ToolRunRow
from shared.wire import subjects
from shared.wire.messages import (
    AnalysisRequest,
    ServiceFinished,
    TaskCompleted,
    TaskEvent,
    TaskStarted,
    encode,
    event_kind,
)
from shared.wire.protocol import ServiceResult
from shared.wire.tasks import TaskRef, new_task_id

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = "openai_codex-mini"
APP = 3
T = TypeVar("T")


def traceparent() -> tuple[str, str]:
    """A fresh W3C traceparent and its trace id, as the gateway's publish span would send."""
    trace_id = secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01", trace_id


@dataclass
class Harness:
    """A running persister and a separate client that publishes to it, as the gateway and orchestrator would."""

    client: Client
    js: JetStreamContext
    engine: AsyncEngine  # the test's own engine, for reading what the persister wrote
    settings: Settings
    persister: asyncio.Task[None] | None = None  # None when the persister runs as its own process

    @property
    def results_dir(self) -> Path:
        return self.settings.results_dir

    async def publish(self, subject: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        await self.js.publish(subject, data, headers=headers)

    async def publish_request(self, request: AnalysisRequest, parent: str | None = None) -> None:
        headers = {"Nats-Msg-Id": request.event_id, **({"traceparent": parent} if parent else {})}
        await self.publish(subjects.request_subject(request.priority), encode(request), headers)

    async def publish_event(self, event: TaskEvent, parent: str | None = None, dedup: bool = True) -> None:
        """Publish like the orchestrator; `dedup=False` leaves out Nats-Msg-Id, as a redelivery beyond JetStream's
        two-minute duplicate window would arrive."""
        headers: dict[str, str] = {"traceparent": parent} if parent else {}
        if dedup:
            headers["Nats-Msg-Id"] = event.event_id
        subject = subjects.event_subject(event.task.id, event_kind(event))
        await self.publish(subject, encode(event), headers)

    async def task(self, task_id: str) -> Task | None:
        async with sessions(self.engine)() as session:
            return await session.get(Task, task_id)

    async def count(self, model: type[ServiceRun | ToolRunRow | FindingRow], task_id: str) -> int:
        async with sessions(self.engine)() as session:
            return (
                await session.scalar(select(func.count()).select_from(model).where(model.task_id == task_id))
                or 0
            )

    async def counts(self, task_id: str) -> dict[str, int]:
        return {
            "service_runs": await self.count(ServiceRun, task_id),
            "tool_runs": await self.count(ToolRunRow, task_id),
            "findings": await self.count(FindingRow, task_id),
        }

    async def wait_status(self, task_id: str, *statuses: str, timeout_s: float = 15.0) -> Task:
        async def ready() -> Task | None:
            task = await self.task(task_id)
            return task if task is not None and task.status in statuses else None

        return await eventually(ready, timeout_s, f"task {task_id} never reached {statuses}", self.persister)

    async def drained(
        self, durable: str = subjects.PERSISTER_EVENTS_DURABLE, timeout_s: float = 15.0
    ) -> None:
        """Wait until the durable has delivered and settled everything in its stream."""
        stream = (
            subjects.EVENTS_STREAM
            if durable == subjects.PERSISTER_EVENTS_DURABLE
            else subjects.REQUESTS_STREAM
        )

        async def done() -> bool:
            info = await self.js.consumer_info(stream, durable)
            return bool(info.num_pending == 0 and info.num_ack_pending == 0)

        await eventually(done, timeout_s, f"{durable} did not drain", self.persister)


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    timeout_s: float,
    message: str,
    watched: asyncio.Task[Any] | None = None,
) -> T:
    """Poll `probe` until it returns something truthy; fail with `message` after `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        if watched is not None and watched.done():
            watched.result()  # the persister died: show why
            raise AssertionError(f"{message}: the persister stopped")
        found = await probe()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(message)
        await asyncio.sleep(0.05)


async def persister_ready(js: JetStreamContext, watched: asyncio.Task[Any] | None = None) -> None:
    """Wait until the persister declared its durables (which it does after migrating the database)."""

    async def consumers_exist() -> bool:
        try:
            await js.consumer_info(subjects.EVENTS_STREAM, subjects.PERSISTER_EVENTS_DURABLE)
            await js.consumer_info(subjects.REQUESTS_STREAM, subjects.PERSISTER_REQUESTS_DURABLE)
        except Exception:  # noqa: BLE001 - not declared yet
            return False
        return True

    await eventually(consumers_exist, 20, "the persister never declared its consumers", watched)


@asynccontextmanager
async def running_persister(
    nats_url: str,
    database_url: str,
    root: Path,
    *,
    max_deliver: int = 5,
    stale_task_s: float = 600.0,
    pending_limit_s: float = 86400.0,
    reap_interval_s: float = 30.0,
    write_limit_s: float = 300.0,
    ack_wait_s: float = 10.0,
    redelivery_margin_s: float = 5.0,
) -> AsyncIterator[Harness]:
    """The persister as an asyncio task, with its own NATS connection and engine, stopped cleanly at the end."""
    settings = load_settings(
        {
            "ASSAY_NATS_URL": nats_url,
            "ASSAY_DATABASE_URL": database_url,
            "ASSAY_RESULTS_DIR": str(root / "results"),
            "ASSAY_VAR_DIR": str(root / "var"),
            "ASSAY_MAX_DELIVER": str(max_deliver),
            "ASSAY_STALE_TASK_S": str(stale_task_s),
            "ASSAY_PENDING_LIMIT_S": str(pending_limit_s),
            "ASSAY_ACK_WAIT_S": str(ack_wait_s),
            "ASSAY_REDELIVERY_MARGIN_S": str(redelivery_margin_s),
            "ASSAY_RESULTS_WRITE_LIMIT_S": str(write_limit_s),
        }
    )
    persister_nc = await connect(nats_url, "persister-under-test")
    persister_engine = create_engine(database_url)
    client = await connect(nats_url, "test-client")
    engine = create_engine(database_url)
    stop = asyncio.Event()
    persister = asyncio.create_task(run(persister_nc, persister_engine, settings, stop, reap_interval_s))
    harness = Harness(
        client=client, js=client.jetstream(), engine=engine, settings=settings, persister=persister
    )
    try:
        await declare_streams(harness.js)
        await persister_ready(harness.js, persister)
        yield harness
    finally:
        stop.set()
        try:
            await asyncio.wait_for(persister, 15)
        finally:
            await client.close()
            await persister_nc.close()
            await engine.dispose()
            await persister_engine.dispose()


# Builders of real messages


def findings(count: int, tools: tuple[str, ...] = ("bandit", "ruff")) -> list[Finding]:
    built = []
    for index in range(count):
        tool = tools[index % len(tools)]
        rule = f"{tool.upper()[:1]}{index % 9:03d}"
        source = f"value_{index} = eval(user_input)"
        built.append(
            Finding(
                tool=tool,
                rule_id=rule,
                severity=SEVERITIES[index % len(SEVERITIES)],
                message=f"finding {index} of {tool}",
                path=f"backend/module_{index % 7}.py",
                line=index + 1,
                category="security" if tool == "bandit" else "quality",
                fingerprint=fingerprint(tool, rule, f"backend/module_{index % 7}.py", source),
            )
        )
    return built


def service_result(service: str = "static", count: int = 250, raw_size: int = 64) -> ServiceResult:
    found = findings(count)
    tools = [
        ToolRun(
            tool="bandit",
            status="success",
            version="1.7.9",
            command=["bandit", "-r", "-f", "json", "."],
            exit_code=1,
            duration_s=1.25,
            files_analyzed=12,
            findings_count=sum(1 for item in found if item.tool == "bandit"),
        ),
        ToolRun(
            tool="ruff",
            status="success",
            version="0.6.0",
            command=["ruff", "check", "--output-format=json"],
            exit_code=1,
            duration_s=0.2,
            files_analyzed=12,
            findings_count=sum(1 for item in found if item.tool == "ruff"),
        ),
        ToolRun(tool="semgrep", status="skipped", reason="semgrep needs the network for its rules"),
    ]
    return ServiceResult(
        service=service,
        status="success",
        tools=tools,
        findings=found,
        sarif=sarif_for(tools, found),
        raw_outputs={"bandit": "b" * raw_size, "ruff": "r" * raw_size},
        metrics={"files": 12},
    )


@dataclass(frozen=True)
class Scenario:
    """One task's messages, as the gateway and a well-behaved orchestrator publish them."""

    request: AnalysisRequest
    started: TaskStarted
    service: ServiceFinished
    completed: TaskCompleted
    parent: str
    trace_id: str


def scenario(result: ServiceResult | None = None) -> Scenario:
    """A security analysis of MODEL/app APP whose one service (static) sends `result`."""
    parent, trace_id = traceparent()
    task = TaskRef(id=new_task_id(), model_slug=MODEL, app_number=APP, analysis_type="security")
    result = result if result is not None else service_result()
    return Scenario(
        request=AnalysisRequest(task=task, tools=["bandit", "ruff", "semgrep"]),
        started=TaskStarted(
            task=task, services=["static"], tools=["bandit", "ruff", "semgrep"], worker="test:1"
        ),
        service=ServiceFinished(task=task, service="static", status=result.status, result=result),
        completed=TaskCompleted(task=task, status="completed", services=["static"]),
        parent=parent,
        trace_id=trace_id,
    )


async def publish_scenario(harness: Harness, case: Scenario) -> None:
    await harness.publish_request(case.request, case.parent)
    for event in (case.started, case.service, case.completed):
        await harness.publish_event(event, case.parent)


# Reading result folders


def result_folder(harness: Harness, task: Task) -> Path:
    assert task.result_dir, f"task {task.task_id} names no result folder"
    return harness.results_dir / task.result_dir


def expected_folder_name(task_id: str, analysis_type: str, created_at: datetime) -> str:
    return f"task_{analysis_type}_{task_id.removeprefix('task_')}_{created_at.strftime('%Y%m%dT%H%M%SZ')}"


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}
