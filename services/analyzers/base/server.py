"""The WebSocket server every analyzer runs on: protocol v1 (analyze, cancel, health) over one small base.

A connection may carry several runs; each run is an asyncio task that beats every HEARTBEAT_INTERVAL_S, reports
progress, and ends with exactly one terminal frame (`result` or `error`). `cancel`, or the client going away,
cancels the run, which kills its tool process groups.

Asked to stop, the server drains: its health says `draining`, a new `analyze` is answered `shutting_down` at once,
the runs it has may finish within the grace period, and those still running after it are stopped and answered
`shutting_down` too, so the orchestrator runs them again elsewhere instead of failing them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import get_args

import msgspec
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from services.analyzers.base.analyzer import Analyzer
from services.analyzers.base.cpu_budget import CpuBudget
from services.analyzers.base.job import Job
from services.analyzers.base.reuse import ReuseStore
from services.analyzers.base.runner import ToolsStopped, run_tools
from shared.operations.app_env import app_env, started_app_env
from shared.operations.config import Settings
from shared.operations.errors import BadRequest, ProtocolError, UnknownApp
from shared.store.paths import UnsafePathError, app_dir
from shared.telemetry.tracing import TASK_ID_ATTRIBUTE, context_from_traceparent
from shared.wire.protocol import (
    HEARTBEAT_INTERVAL_S,
    AnalyzeFrame,
    CancelFrame,
    ClientFrame,
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

log = logging.getLogger(__name__)
tracer = trace.get_tracer("assay.analyzer")

Send = Callable[[msgspec.Struct], Awaitable[None]]


class AnalyzerServer:
    """Serves one Analyzer. `cpu_budget` is shared by all runs, so tools never exceed the configured concurrency."""

    def __init__(self, analyzer: Analyzer, settings: Settings) -> None:
        self.analyzer = analyzer
        self.settings = settings
        self.cpu_budget = CpuBudget(settings.tool_concurrency)
        self.reuse = ReuseStore(settings.reuse_dir, settings.reuse_max_bytes)
        self.runs: dict[str, asyncio.Task[None]] = {}
        self.draining = False  # asked to stop: no new run starts
        self.handing_back = False  # past the grace period: runs stopped now are answered `shutting_down`

    async def handle(self, websocket: ServerConnection) -> None:
        """One client connection: decode each frame at the edge and dispatch it."""
        lock = asyncio.Lock()

        async def send(frame: msgspec.Struct) -> None:
            async with lock:
                await websocket.send(encode_frame(frame))

        started_here: dict[str, asyncio.Task[None]] = {}
        try:
            async for message in websocket:
                frame = read_frame(message)
                if isinstance(frame, Violation):
                    # The client does not speak the protocol: nothing it sends on this connection can be trusted.
                    log.warning("closing a client connection (%d): %s", frame.code, frame.reason)
                    await websocket.close(frame.code, frame.reason[:MAX_REASON_CHARS])
                    break
                if isinstance(frame, ErrorFrame):
                    await send(frame)
                elif isinstance(frame, AnalyzeFrame) and self.draining:
                    await send(ShuttingDownFrame(id=frame.id, message=self._stopping()))
                elif isinstance(frame, AnalyzeFrame):
                    run = started_here[frame.id] = self._start(frame, send)
                    # A connection carries runs for as long as the client keeps it: each leaves once it ended.
                    run.add_done_callback(partial(_drop, started_here, frame.id))
                elif isinstance(frame, CancelFrame):
                    self._cancel(frame.id, started_here)
                elif isinstance(frame, HealthFrame):
                    await send(await self.health(frame.id))
        except ConnectionClosed:
            pass
        finally:
            # Nobody is left to read these runs' results: stop their tools instead of letting them run on.
            for request_id in list(started_here):
                self._cancel(request_id, started_here)

    async def health(self, request_id: str | None = None) -> HealthReport:
        tools = await asyncio.gather(*(tool.health(self.settings) for tool in self.analyzer.tools))
        return HealthReport(
            id=request_id,
            service=self.analyzer.service,
            tools=list(tools),
            active_runs=len(self.runs),
            draining=self.draining,
        )

    async def drain(self, grace_s: float) -> None:
        """Stop taking runs, let those running finish for up to `grace_s`, then stop the rest and hand them back."""
        self.draining = True
        running = list(self.runs.values())
        if running:
            log.info("stopping: %d runs may finish within %g s", len(running), grace_s)
            await asyncio.wait(running, timeout=grace_s)
        self.handing_back = True
        left = list(self.runs.values())
        if left:
            log.warning("stopping: %d runs still going after %g s are handed back", len(left), grace_s)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    def _stopping(self) -> str:
        return f"the {self.analyzer.service} analyzer is shutting down; run the request on another replica"

    def _start(self, frame: AnalyzeFrame, send: Send) -> asyncio.Task[None]:
        previous = self.runs.get(frame.id)
        if previous is not None:  # the same request again (a client retry): the newer connection wins
            previous.cancel()
        task = asyncio.create_task(self._run(frame, send), name=f"run {frame.id}")
        self.runs[frame.id] = task
        task.add_done_callback(
            lambda done: self.runs.pop(frame.id, None) if self.runs.get(frame.id) is done else None
        )
        return task

    @staticmethod
    def _cancel(request_id: str, started_here: dict[str, asyncio.Task[None]]) -> None:
        """Cancel a run this connection started; a retry of the same id on another connection is not touched."""
        task = started_here.pop(request_id, None)
        if task is not None:
            task.cancel()

    async def _run(self, frame: AnalyzeFrame, send: Send) -> None:
        extra = {"task_id": frame.task.id, "request_id": frame.id}
        with tracer.start_as_current_span(
            f"analyze {self.analyzer.service}",
            context=context_from_traceparent(frame.traceparent),
            kind=SpanKind.SERVER,
            attributes={TASK_ID_ATTRIBUTE: frame.task.id, "rpc.system": "websocket"},
        ) as span:
            heartbeat = asyncio.create_task(_beat(frame.id, send))
            try:
                job = await self._job(frame, send)
                tools = self.analyzer.select(frame.tools)
                # DEBUG: the run's ending is its INFO line (at saturation a line per frame costs a few per cent).
                log.debug("analysis started: %s", ", ".join(t.name for t in tools), extra=extra)
                async with asyncio.timeout(frame.deadline_s) as deadline:
                    try:
                        result = await run_tools(self.analyzer.service, tools, job)
                    except ToolsStopped as stopped:
                        if self.handing_back and not deadline.expired():
                            raise asyncio.CancelledError from None  # handed back below, not a cancelled result
                        result = _stopped_result(stopped.result, deadline.expired(), frame.deadline_s)
                span.set_attribute("assay.findings", len(result.findings))
                await _send_quietly(send, ResultFrame(id=frame.id, result=result))
                log.info("analysis %s with %d findings", result.status, len(result.findings), extra=extra)
            except (
                ProtocolError
            ) as rejected:  # a request this analyzer cannot take (UnknownTool, UnknownApp …)
                await _send_quietly(send, ErrorFrame(id=frame.id, code=rejected.code, message=str(rejected)))
            except TimeoutError:
                message = f"deadline of {frame.deadline_s} s passed before the tools finished"
                await _send_quietly(send, ErrorFrame(id=frame.id, code="deadline", message=message))
            except asyncio.CancelledError:  # cancelled before its tools started, or stopped by shutdown
                if self.handing_back:
                    log.info("analysis handed back: shutting down", extra=extra)
                    await _send_quietly(send, ShuttingDownFrame(id=frame.id, message=self._stopping()))
                else:
                    log.info("analysis cancelled", extra=extra)
                    await _send_quietly(
                        send, ErrorFrame(id=frame.id, code="cancelled", message="run cancelled")
                    )
            except Exception as error:
                log.exception("analysis crashed", extra=extra)
                await _send_quietly(
                    send, ErrorFrame(id=frame.id, code="internal", message=f"{type(error).__name__}: {error}")
                )
            finally:
                heartbeat.cancel()

    async def _job(self, frame: AnalyzeFrame, send: Send) -> Job:
        try:
            # One hand-off to a thread for the folder and its .env: the apps root may be a slow network mount.
            folder, env = await asyncio.to_thread(_app_folder_and_env, self.settings.apps_dir, frame)
        except UnsafePathError as error:
            raise BadRequest(str(error)) from error
        if folder is None and self.analyzer.needs_source:
            raise UnknownApp(
                f"app {frame.task.model_slug}/app{frame.task.app_number} not found under the apps root",
            )
        total = max(1, len(frame.tools) or len(self.analyzer.tools))
        finished: set[str] = set()

        async def report(tool: str, stage: str, message: str) -> None:
            if stage != "started":
                finished.add(tool)
            percent = round(100.0 * len(finished) / total, 1)
            await _send_quietly(
                send, ProgressFrame(id=frame.id, tool=tool, stage=stage, percent=percent, message=message)
            )

        # The app Assay started for this run listens on ports of its own choosing, and only there.
        env = started_app_env(env, frame.app_ports)
        return Job(
            request_id=frame.id,
            task=frame.task,
            app_dir=folder,
            app_env=env,
            target_urls=list(frame.target_urls),
            options=dict(frame.options),
            deadline=time.monotonic() + frame.deadline_s,
            settings=self.settings,
            cpu_budget=self.cpu_budget,
            report=report,
            reuse=self.reuse,
            priority=frame.priority,
            python_env=frame.python_env,
        )


def _stopped_result(result: ServiceResult, deadline_passed: bool, deadline_s: float) -> ServiceResult:
    """The answer to a run stopped midway: the finished tools' outputs, `cancelled` on a cancel, `partial` when
    the run's deadline stopped it."""
    if not deadline_passed:
        return result
    reason = f"deadline of {deadline_s} s passed before every tool finished"
    error = f"{reason}; {result.error}" if result.error else reason
    return msgspec.structs.replace(result, status="partial", error=error)


async def _beat(request_id: str, send: Send) -> None:
    while True:
        await _send_quietly(send, HeartbeatFrame(id=request_id))
        await asyncio.sleep(HEARTBEAT_INTERVAL_S)


async def _send_quietly(send: Send, frame: msgspec.Struct) -> None:
    """Send if the client is still there; a closed connection is not an error of the run."""
    try:
        await send(frame)
    except ConnectionClosed:
        pass


def _drop(started_here: dict[str, asyncio.Task[None]], request_id: str, run: asyncio.Task[None]) -> None:
    """Forget an ended run of a connection, unless a retry under the same id has taken its place."""
    if started_here.get(request_id) is run:
        del started_here[request_id]


class Violation(msgspec.Struct, frozen=True):
    """A frame that breaks the protocol, and the close code that says so: 1007 (not JSON), 1008 (not a frame)."""

    code: int
    reason: str


class _Head(msgspec.Struct):
    """What every client frame has, read from one whose body did not decode."""

    type: str
    id: str = ""


CLIENT_FRAME_TYPES = frozenset(str(kind.__struct_config__.tag) for kind in get_args(ClientFrame))
MAX_REASON_CHARS = 120  # a close reason is at most 123 bytes


def read_frame(message: str | bytes) -> ClientFrame | ErrorFrame | Violation:
    """The client frame `message` holds; for a known frame whose fields are wrong, the `bad_request` answer to
    its id; for anything else (not JSON, nested too deep to decode, not a frame we know) the protocol violation."""
    try:
        return decode_client_frame(message)
    except msgspec.ValidationError as error:  # a subclass of DecodeError: JSON, but not a valid frame
        invalid = error
    except msgspec.DecodeError as error:
        return Violation(1007, f"not a JSON frame: {error}")
    except RecursionError:
        return Violation(1008, "frame nested too deeply")
    try:
        head = msgspec.json.decode(message, type=_Head)
    except RecursionError:
        return Violation(1008, "frame nested too deeply")
    except msgspec.ValidationError:
        head = None
    if head is None or head.type not in CLIENT_FRAME_TYPES:
        return Violation(1008, f"not a known frame: {invalid}")
    return ErrorFrame(id=head.id, code="bad_request", message=f"bad frame: {invalid}")


def _app_folder_and_env(apps_dir: Path, frame: AnalyzeFrame) -> tuple[Path | None, dict[str, str]]:
    """The run's app folder (None when it does not exist) and the variables of its `.env` (blocking)."""
    folder = app_dir(apps_dir, frame.task.model_slug, frame.task.app_number)
    return (folder, app_env(folder)) if folder.is_dir() else (None, {})
