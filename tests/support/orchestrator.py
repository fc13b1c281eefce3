"""What the orchestrator tests share (no tests here): a scripted analyzer — a real WebSocket server on a free port
speaking protocol v1 and doing what its script says — the orchestrator running in-process against a real
nats-server, and a recorder of everything published on `assay.events.>`."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from services.orchestrator.service import serve as serve_orchestrator
from shared.jetstream.connection import connect
from shared.jetstream.streams import declare_streams
from shared.operations.config import Settings, load_settings
from shared.results.findings import Finding, ToolRun, fingerprint
from shared.wire import subjects
from shared.wire.messages import (
    AnalysisRequest,
    Event,
    Priority,
    TerminalEvent,
    decode_event,
    encode,
    event_kind,
)
from shared.wire.protocol import (
    MAX_FRAME_BYTES,
    AnalyzeFrame,
    CancelFrame,
    ErrorFrame,
    HealthFrame,
    HealthReport,
    HeartbeatFrame,
    ProgressFrame,
    ResultFrame,
    ServiceResult,
    ShuttingDownFrame,
    decode_client_frame,
    encode_frame,
)
from shared.wire.tasks import AnalysisType, TaskRef, new_task_id
from tests.support.ports import free_port

MODEL = "openai_codex-mini"
APP = 3
# A target URL for requests that need a running app but are not about it: named, Assay starts no app.
RUNNING_ELSEWHERE = "http://127.0.0.1:9"
T = TypeVar("T")

Script = Literal[
    "result",
    "foreign",
    "error",
    "silent",
    "drop",
    "hold",
    "keep",
    "large",
    "chatty",
    "talkative",
    "partial",
    "echo",
    "handback",
]


def traceparent() -> tuple[str, str]:
    """A fresh W3C traceparent and its trace id, as the gateway's publish span would send."""
    trace_id = secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01", trace_id


def sample_result(
    service: str, marker: str = "real", status: Literal["success", "partial"] = "success"
) -> ServiceResult:
    """A small result with two findings whose messages carry `marker`, as an analyzer reports it."""
    tool = "bandit" if service == "static" else f"{service}-tool"
    findings = [
        Finding(
            tool=tool,
            rule_id=f"R{n}",
            severity="high" if n == 1 else "low",
            message=f"{marker} finding {n}",
            path="backend/app.py",
            line=10 * n,
            category="security",
            fingerprint=fingerprint(tool, f"R{n}", "backend/app.py", f"line {n}"),
        )
        for n in (1, 2)
    ]
    runs = [
        ToolRun(
            tool=tool,
            status="success" if status == "success" else "failed",
            command=[tool, "-r", "."],
            exit_code=1,
            duration_s=0.1,
            files_analyzed=3,
            findings_count=2,
        )
    ]
    return ServiceResult(
        service=service,
        status=status,
        tools=runs,
        findings=findings,
        error=None if status == "success" else f"{tool} failed",
    )


def cancelled_result(service: str) -> ServiceResult:
    """What an analyzer answers a cancel with: the sample's finished tool, plus one recorded as `cancelled`."""
    result = sample_result(service, "kept")
    stopped = ToolRun(tool="pylint", status="cancelled", reason="the run was cancelled first")
    return msgspec.structs.replace(
        result,
        status="cancelled",
        tools=[*result.tools, stopped],
        error="pylint: the run was cancelled first",
    )


@dataclass
class ScriptedAnalyzer:
    """A real WebSocket analyzer on a free loopback port. Each `analyze` runs the next script of `scripts` (the
    last one repeats) and is recorded, as is every `cancel`."""

    service: str
    scripts: list[Script]
    active_runs: int = 0  # what its health report claims
    health_delay_s: float = 0.0  # how long it takes to answer a health request
    draining: bool = False  # what its health report claims: stopping, taking no new run
    port: int = field(default_factory=free_port)
    analyzed: list[AnalyzeFrame] = field(default_factory=list)
    cancels: list[CancelFrame] = field(default_factory=list)
    health_requests: int = 0
    connections: int = 0  # WebSocket connections it accepted
    cancel_received: asyncio.Event = field(default_factory=asyncio.Event)
    analyze_received: asyncio.Event = field(default_factory=asyncio.Event)
    large_bytes: int = 5 * 1024 * 1024
    _server: Server | None = None
    _runs: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await serve(self._handle, "127.0.0.1", self.port, max_size=MAX_FRAME_BYTES)

    async def stop(self) -> None:
        for run in self._runs:
            run.cancel()
        await asyncio.gather(*self._runs, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, websocket: ServerConnection) -> None:
        self.connections += 1
        cancelled: set[str] = set()
        try:
            async for message in websocket:
                frame = decode_client_frame(message)
                if isinstance(frame, HealthFrame):
                    self.health_requests += 1
                    await asyncio.sleep(self.health_delay_s)
                    report = HealthReport(
                        id=frame.id,
                        service=self.service,
                        active_runs=self.active_runs,
                        draining=self.draining,
                    )
                    await websocket.send(encode_frame(report))
                elif isinstance(frame, AnalyzeFrame):
                    script = self.scripts[min(len(self.analyzed), len(self.scripts) - 1)]
                    self.analyzed.append(frame)
                    self.analyze_received.set()
                    self._runs.append(asyncio.create_task(self._play(websocket, frame, script, cancelled)))
                elif isinstance(frame, CancelFrame):
                    self.cancels.append(frame)
                    cancelled.add(frame.id)
                    self.cancel_received.set()
        except ConnectionClosed:
            pass

    async def _play(
        self, websocket: ServerConnection, frame: AnalyzeFrame, script: Script, cancelled: set[str]
    ) -> None:
        async def send(message: msgspec.Struct) -> None:
            await websocket.send(encode_frame(message))

        run_id = frame.id
        try:
            if script == "silent":
                return
            await send(HeartbeatFrame(id=run_id))
            await send(
                ProgressFrame(
                    id=run_id, tool="bandit", stage="started", percent=0.0, message="bandit started"
                )
            )
            if script == "foreign":
                await send(
                    ResultFrame(id="task_000000000000:static", result=sample_result(self.service, "FOREIGN"))
                )
                await send(ProgressFrame(id="task_000000000000:static", tool="bandit", stage="finished"))
                await websocket.send("this is not a frame")
            if script == "handback":  # stopping past its grace period: the run goes back to the orchestrator
                await send(ShuttingDownFrame(id=run_id, message="the static analyzer is shutting down"))
            elif script == "error":
                await send(ErrorFrame(id=run_id, code="internal", message="bandit crashed with exit code 2"))
            elif script == "drop":
                await asyncio.sleep(0.1)
                await websocket.close(code=1011, reason="analyzer going away")
            elif script == "hold":
                while run_id not in cancelled:
                    await send(HeartbeatFrame(id=run_id))
                    await asyncio.sleep(0.05)
                await send(ErrorFrame(id=run_id, code="cancelled", message="run cancelled"))
            elif (
                script == "keep"
            ):  # like the analyzer base: a cancel ends the run with the finished tools' result
                while run_id not in cancelled:
                    await send(HeartbeatFrame(id=run_id))
                    await asyncio.sleep(0.05)
                await send(ResultFrame(id=run_id, result=cancelled_result(self.service)))
            elif script == "talkative":  # like chatty, for about a second: longer than the progress interval
                for n in range(100):
                    await send(ProgressFrame(id=run_id, tool="bandit", stage="running", percent=n))
                    await asyncio.sleep(0.01)
                await send(ResultFrame(id=run_id, result=sample_result(self.service)))
            elif script == "chatty":
                for n in range(40):
                    await send(ProgressFrame(id=run_id, tool="bandit", stage="running", percent=n * 2.5))
                    await asyncio.sleep(0.01)
                await send(ResultFrame(id=run_id, result=sample_result(self.service)))
            elif script == "large":
                result = sample_result(self.service)
                result.raw_outputs = {"bandit": "x" * self.large_bytes}
                await send(ResultFrame(id=run_id, result=result))
            elif script == "echo":  # a result of its own: its findings name the run's task
                await asyncio.sleep(0.05)  # so that the runs of a test overlap
                await send(ResultFrame(id=run_id, result=sample_result(self.service, frame.task.id)))
            elif script == "partial":
                await send(ResultFrame(id=run_id, result=sample_result(self.service, status="partial")))
            else:
                await send(ProgressFrame(id=run_id, tool="bandit", stage="finished", percent=100.0))
                await send(ResultFrame(id=run_id, result=sample_result(self.service)))
        except ConnectionClosed:
            pass


@asynccontextmanager
async def analyzers(*peers: ScriptedAnalyzer) -> AsyncIterator[tuple[ScriptedAnalyzer, ...]]:
    for peer in peers:
        await peer.start()
    try:
        yield peers
    finally:
        for peer in peers:
            await peer.stop()


def settings_for(nats_url: str, tmp_path: Path, peers: list[ScriptedAnalyzer], **env: str) -> Settings:
    """Settings whose analyzer URLs point at the scripted peers (several of a service are its replicas)."""
    urls: dict[str, list[str]] = {}
    for peer in peers:
        urls.setdefault(peer.service, []).append(peer.url)
    return load_settings(
        {
            "ASSAY_NATS_URL": nats_url,
            "ASSAY_VAR_DIR": str(tmp_path / "var"),
            "ASSAY_HEARTBEAT_TIMEOUT_S": "1.5",
            "ASSAY_ACK_WAIT_S": "6",
            **{f"ASSAY_{service.upper()}_URLS": ",".join(found) for service, found in urls.items()},
            **env,
        }
    )


@asynccontextmanager
async def running_orchestrator(
    settings: Settings, worker: str = "test-host:1"
) -> AsyncIterator[asyncio.Task[None]]:
    """One orchestrator replica in this process, on its own connection; stopped (cleanly) on exit."""
    assert settings.nats_url
    nc = await connect(settings.nats_url, "orchestrator-test")
    stop = asyncio.Event()
    task = asyncio.create_task(serve_orchestrator(nc, settings, stop, worker=worker))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await nc.close()


@dataclass
class Published:
    subject: str
    headers: dict[str, str]
    event: Event


@dataclass
class EventLog:
    """Everything published on `assay.events.>`, in stream order, from an ordered JetStream subscription."""

    published: list[Published] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def on_message(self, msg: Msg) -> None:
        async with self.arrived:
            self.published.append(Published(msg.subject, dict(msg.headers or {}), decode_event(msg.data)))
            self.arrived.notify_all()

    def of(self, task_id: str) -> list[Published]:
        return [item for item in self.published if item.event.task.id == task_id]

    async def until(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                async with self.arrived:
                    await self.arrived.wait_for(predicate)
        except TimeoutError:
            kinds = [(item.event.task.id, kind(item.event)) for item in self.published]
            raise AssertionError(f"{what} within {timeout_s} s; published: {kinds}") from None

    async def terminal(self, task_id: str, timeout_s: float = 10.0) -> list[Published]:
        """The task's events up to and including its terminal one."""
        await self.until(
            lambda: any(is_terminal(item.event) for item in self.of(task_id)),
            timeout_s,
            f"no terminal event for {task_id}",
        )
        return self.of(task_id)


kind = event_kind  # the tests' short name for it


def is_terminal(event: Event) -> bool:
    return isinstance(event, TerminalEvent)


def terminal_of(events: list[Published]) -> TerminalEvent:
    ending = [item.event for item in events if is_terminal(item.event)]
    assert len(ending) == 1, [kind(item.event) for item in events]
    return ending[0]  # type: ignore[return-value]


@dataclass
class Bench:
    """The test's own NATS client: publishes requests like the gateway and records events."""

    nc: Client
    js: JetStreamContext
    events: EventLog

    async def request(
        self,
        analysis_type: AnalysisType = "security",
        priority: Priority = "normal",
        parent: str | None = None,
        deadline_s: float = 900.0,
        target_urls: list[str] | None = None,
    ) -> AnalysisRequest:
        request = AnalysisRequest(
            task=TaskRef(id=new_task_id(), model_slug=MODEL, app_number=APP, analysis_type=analysis_type),
            priority=priority,
            deadline_s=deadline_s,
            target_urls=target_urls or [],
        )
        headers = {"Nats-Msg-Id": request.event_id, **({"traceparent": parent} if parent else {})}
        await self.js.publish(subjects.request_subject(request.priority), encode(request), headers=headers)
        return request

    async def settled(self, timeout_s: float = 10.0) -> None:
        """Wait until no orchestrator durable has a request pending or unacknowledged."""

        async def done() -> bool:
            for priority in ("urgent", "high", "normal", "low"):
                info = await self.js.consumer_info(
                    subjects.REQUESTS_STREAM, subjects.orchestrator_durable(priority)
                )
                if info.num_pending or info.num_ack_pending:
                    return False
            return True

        await eventually(done, timeout_s, "requests were not all settled")


@asynccontextmanager
async def bench_for(nats_url: str) -> AsyncIterator[Bench]:
    nc = await connect(nats_url, "orchestrator-test-client")
    js = nc.jetstream()
    await declare_streams(js)
    events = EventLog()
    subscription = await js.subscribe(subjects.EVENTS_ALL, cb=events.on_message, ordered_consumer=True)
    try:
        yield Bench(nc, js, events)
    finally:
        await subscription.unsubscribe()
        await nc.close()


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout_s: float, message: str) -> T:
    """Poll `probe` until it returns something truthy; fail with `message` after `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = await probe()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(message)
        await asyncio.sleep(0.05)


@asynccontextmanager
async def orchestrated(
    nats_url: str, tmp_path: Path, peers: list[ScriptedAnalyzer], worker: str = "test-host:1", **env: str
) -> AsyncIterator[Bench]:
    """Scripted analyzers, the test's client and one orchestrator replica, all running; stopped in reverse."""
    settings = settings_for(nats_url, tmp_path, peers, **env)
    async with analyzers(*peers), bench_for(nats_url) as bench, running_orchestrator(settings, worker):
        yield bench
