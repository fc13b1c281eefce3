"""One task, end to end: plan the services, announce the start, run every analyzer at once, report each one's
outcome as it ends, then the task's terminal event.

A task that needs an analyzer in an outage (no healthy replica) waits before it starts, its request held, for up
to ASSAY_ANALYZER_OUTAGE_S from the outage's start; it fails with the reason only past that.

The runner knows nothing of acks. It returns normally once the task's terminal event is published (`completed`,
`failed`, or `cancelled` on a cancel signal, after a `service` event for each analyzer that kept the results of
its finished tools); it raises when a publish fails (the consumer retries the request),
and when cancelled by shutdown it stops the analyzers and publishes nothing, so that another replica runs the
task again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec

from services.orchestrator.analyzer_client import AnalyzerClient, AnalyzerFailed, request_id
from services.orchestrator.apps.errors import AppError, AppNotStarted
from services.orchestrator.apps.runner import RUNNING_APP_SERVICES, AppRunner, AppSlot
from services.orchestrator.cancellation import CancelSignal
from services.orchestrator.publisher import EventPublisher
from shared.telemetry.metrics import record_service_run
from shared.wire.app_run import AppRun
from shared.wire.catalog import plan
from shared.wire.messages import (
    AnalysisRequest,
    ServiceFinished,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskProgress,
    TaskStarted,
    TerminalEvent,
)
from shared.wire.protocol import AnalyzeFrame, ProgressFrame, ServiceResult

log = logging.getLogger(__name__)

# A service that must not overlap another on the same app: the load test runs after the dynamic checks, which
# change the app's state (they sign up users, store objects) and whose timing checks the load would disturb.
RUNS_AFTER = {"performance": "dynamic"}
# The static tools that resolve the app's imports: the orchestrator prepares the app's virtualenv for them.
ENV_TOOLS = frozenset({"pylint", "mypy"})


@dataclass(frozen=True)
class RunContext:
    """What running a task needs besides the request."""

    publisher: EventPublisher
    analyzers: AnalyzerClient
    worker: str  # hostname:pid, named in the `started` event
    pulse_s: float = 30.0  # a progress event at least this often, so the persister sees the task alive
    # At most one analyzer progress event per service this often, the first this long after the task started: a
    # run that ends sooner says all in its `service` event (at saturation a progress event of a run that took a
    # few milliseconds cost the pipeline about a tenth of its CPU).
    progress_interval_s: float = 0.5
    apps: AppRunner | None = None  # starts the app for analyses that need it running; None: never


class _Progress:
    """Progress events of one task: analyzer progress thrown off above the rate limit, plus a regular pulse."""

    def __init__(self, ctx: RunContext, request: AnalysisRequest, services: list[str]) -> None:
        self.ctx = ctx
        self.request = request
        self.running = list(services)
        self.percent_by_service = dict.fromkeys(services, 0.0)
        self.clock = asyncio.get_running_loop().time
        self.last_any = self.clock()
        self.last_by_service = dict.fromkeys(services, self.last_any)

    async def analyzer_progress(self, service: str, frame: ProgressFrame) -> None:
        self.percent_by_service[service] = frame.percent
        now = self.clock()
        if now - self.last_by_service.get(service, self.last_any) < self.ctx.progress_interval_s:
            return  # a later frame, or the service event, says the same, only fresher
        self.last_by_service[service] = now
        await self._publish(service, frame.tool, frame.stage, frame.message)

    async def pulse(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self.last_any + self.ctx.pulse_s - self.clock()))
            if self.running and self.clock() - self.last_any >= self.ctx.pulse_s:
                await self._publish(self.running[0], None, "running", f"running: {', '.join(self.running)}")

    def finished(self, service: str) -> None:
        if service in self.running:
            self.running.remove(service)
        self.percent_by_service[service] = 100.0

    def task_percent(self) -> float:
        """The task's progress: the mean of its services', so it never jumps between them."""
        values = self.percent_by_service.values()
        return round(sum(values) / max(1, len(values)), 1)

    async def _publish(self, service: str, tool: str | None, stage: str, message: str) -> None:
        percent = self.task_percent()
        self.last_any = self.clock()
        event = TaskProgress(
            task=self.request.task,
            service=service,
            tool=tool,
            stage=stage,
            percent=percent,
            message=message,
        )
        await self.ctx.publisher.publish_progress(event)


async def run_task(ctx: RunContext, request: AnalysisRequest, signal: CancelSignal) -> None:
    """Run `request` until its terminal event is published (see the module docstring for the other endings)."""
    extra = {"task_id": request.task.id}
    chosen = plan(request.task.analysis_type, request.tools)
    if not chosen:
        reason = f"no tool of a {request.task.analysis_type} analysis matches {request.tools}"
        await ctx.publisher.publish(TaskFailed(task=request.task, reason=reason))
        return
    unstarted = await _await_analyzers(ctx, request, list(chosen), signal)
    if unstarted is not None:
        await ctx.publisher.publish(unstarted)
        log.info("task ended before it started: %s", unstarted.reason, extra=extra)
        return
    await ctx.publisher.publish(
        TaskStarted(
            task=request.task,
            services=list(chosen),
            tools=[tool for tools in chosen.values() for tool in tools],
            priority=request.priority,
            worker=ctx.worker,
        )
    )
    log.info("task started: %s", ", ".join(chosen), extra=extra)
    progress = _Progress(ctx, request, list(chosen))
    finished: list[ServiceFinished] = []
    kept: list[ServiceResult] = []  # what analyzers stopped by a cancel kept of their finished tools
    app = AppSlot()
    on_app = {service: tools for service, tools in chosen.items() if _on_app(ctx, request, service)}
    off_app = {service: tools for service, tools in chosen.items() if service not in on_app}

    async def analyze(request: AnalysisRequest, app_ports: dict[str, int]) -> None:
        await _run_services(ctx, request, on_app, progress, finished, kept, app_ports)

    async def app_unstarted(reason: str) -> None:
        for service in on_app:  # the analyzers of the app that never ran: each one's event says why
            progress.finished(service)
            finished.append(await _publish_service(ctx, request, service, None, reason))

    services = asyncio.create_task(
        _apart_from_app(
            _run_services(ctx, request, off_app, progress, finished, kept, {}),
            _with_app(ctx, request, app, analyze, app_unstarted if off_app else None),
        )
    )
    pulse = asyncio.create_task(progress.pulse())
    cancelled = asyncio.create_task(signal.wait())
    try:
        await asyncio.wait({services, cancelled}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        pulse.cancel()
        cancelled.cancel()
        # a cancel request, or shutdown: stop the analyzers and wait until they are told
        if not services.done():
            services.cancel()
            await asyncio.gather(services, return_exceptions=True)
    if services.cancelled():
        reason = signal.reason or "cancelled"
        for result in kept:  # before `cancelled`, so the persister keeps them in the task's rows and folder
            finished.append(await _publish_service(ctx, request, result.service, result, None))
        await ctx.publisher.publish(
            TaskCancelled(
                task=request.task,
                reason=reason,
                services=[event.service for event in finished],
                app=app.record,
            )
        )
        log.info("task cancelled: %s", reason, extra=extra)
        return
    try:
        services.result()  # a failed publish: raised for the consumer to retry
    except AppError as error:
        services_run = [event.service for event in finished]
        terminal: TerminalEvent = TaskFailed(
            task=request.task, reason=str(error).splitlines()[0], services=services_run, app=app.record
        )
    else:
        terminal = terminal_event(request, finished, app.record)
    await ctx.publisher.publish(terminal)
    log.info("task ended: %s", type(terminal).__name__, extra=extra)


async def _await_analyzers(
    ctx: RunContext, request: AnalysisRequest, services: list[str], signal: CancelSignal
) -> TaskFailed | TaskCancelled | None:
    """Wait while any of `services` is in an outage; None once all are available, else how the task ends: failed
    (the outage outlasted ASSAY_ANALYZER_OUTAGE_S) or cancelled meanwhile."""
    if not ctx.analyzers.down(services):
        return None
    log.info("waiting for %s: no healthy replica", ", ".join(services), extra={"task_id": request.task.id})
    available = asyncio.create_task(ctx.analyzers.available(services))
    cancelled = asyncio.create_task(signal.wait())
    try:
        await asyncio.wait({available, cancelled}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        available.cancel()
        cancelled.cancel()
        await asyncio.gather(available, cancelled, return_exceptions=True)
    if cancelled.done() and not cancelled.cancelled():
        return TaskCancelled(task=request.task, reason=cancelled.result())
    try:
        available.result()
    except AnalyzerFailed as error:
        return TaskFailed(task=request.task, reason=str(error))
    return None


def _on_app(ctx: RunContext, request: AnalysisRequest, service: str) -> bool:
    """Whether `service` runs against the app Assay starts (the others never wait for it, nor fail with it)."""
    return ctx.apps is not None and ctx.apps.needed(request) and service in RUNNING_APP_SERVICES


async def _apart_from_app(off_app: Awaitable[None], on_app: Awaitable[None]) -> None:
    """The services that do not need the app and those that run against it, at once; both run to their end, then
    the first error (a failed publish before the app's own) is raised."""
    errors = [
        error for error in await asyncio.gather(off_app, on_app, return_exceptions=True) if error is not None
    ]
    errors.sort(key=lambda error: isinstance(error, AppError))
    if errors:
        raise errors[0]


async def _with_app(
    ctx: RunContext,
    request: AnalysisRequest,
    app: AppSlot,
    analyze: Callable[[AnalysisRequest, dict[str, int]], Awaitable[None]],
    unstarted: Callable[[str], Awaitable[None]] | None,
) -> None:
    """The analysis, inside a run of the app when it needs one (the app runner's hook). An app that does not start
    is an AppError, unless `unstarted` takes its reason: other services ran, and the task ends `partial`."""
    if ctx.apps is None or not ctx.apps.needed(request):
        await analyze(request, {})
        return
    try:
        await ctx.apps.run(request, app, analyze)
    except AppNotStarted as error:
        if unstarted is None:
            raise
        await unstarted(str(error).splitlines()[0])


async def _run_services(
    ctx: RunContext,
    request: AnalysisRequest,
    chosen: dict[str, list[str]],
    progress: _Progress,
    finished: list[ServiceFinished],
    kept: list[ServiceResult],
    app_ports: dict[str, int],
) -> None:
    """Every service at once (but the load test after the dynamic checks: RUNS_AFTER); the first error (a failed
    publish) stops the others. A service cancelled midway adds what its analyzer kept to `kept`."""
    if not chosen:
        return
    deadline = asyncio.get_running_loop().time() + request.deadline_s
    ended = {service: asyncio.Event() for service in chosen}

    async def one(service: str, tools: list[str]) -> None:
        earlier = RUNS_AFTER.get(service)
        if earlier in ended:
            await ended[earlier].wait()
        try:
            event = await _run_service(ctx, request, service, tools, deadline, progress, app_ports, kept)
        finally:
            ended[service].set()
        finished.append(event)

    runs = [
        asyncio.create_task(one(service, tools), name=f"{request.task.id} {service}")
        for service, tools in chosen.items()
    ]
    try:
        await asyncio.wait(runs, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for run in runs:
            run.cancel()  # no-op for those done; the others send `cancel` to their analyzers
        await asyncio.gather(*runs, return_exceptions=True)
    for run in runs:
        # A run cancelled above only because a sibling failed must not hide that sibling's error.
        if not run.cancelled() and run.exception() is not None:
            raise run.exception()  # type: ignore[misc]


async def _run_service(
    ctx: RunContext,
    request: AnalysisRequest,
    service: str,
    tools: list[str],
    deadline: float,
    progress: _Progress,
    app_ports: dict[str, int],
    kept: list[ServiceResult],
) -> ServiceFinished:
    """One analyzer's run, ended by exactly one published `service` event (returned with its inline result)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    python_env = None
    if ctx.apps is not None and service == "static" and ENV_TOOLS & set(tools):
        # The static frame waits for the preparation (a cache hit takes milliseconds; a miss is pip's time, once
        # per requirements file): its pylint and mypy read the app's packages, and one frame starts the run. At most
        # half the time left is spent on it: the tools keep the rest.
        python_env = await ctx.apps.python_environment(request, within_s=(deadline - started) / 2)
    frame = AnalyzeFrame(
        id=request_id(request.task.id, service),
        task=request.task,
        tools=tools,
        target_urls=list(request.target_urls),
        app_ports=dict(app_ports),
        options=dict(request.options),
        deadline_s=max(1.0, deadline - loop.time()),
        priority=request.priority,
        python_env=python_env,
    )

    async def on_progress(update: ProgressFrame) -> None:
        await progress.analyzer_progress(service, update)

    result: ServiceResult | None = None
    error: str | None = None
    stopped: list[ServiceResult] = []
    try:
        async with asyncio.timeout_at(deadline):
            result = await ctx.analyzers.analyze(service, frame, on_progress, stopped.append)
    except AnalyzerFailed as failure:
        error = str(failure)
    except TimeoutError:
        error = f"the task's deadline of {request.deadline_s:g} s passed before {service} finished"
        if stopped:  # the tools that finished in time still count
            result = msgspec.structs.replace(stopped[0], status="partial", error=error)
    except asyncio.CancelledError:
        kept.extend(stopped)
        raise
    progress.finished(service)
    record_service_run(service, result.status if result is not None else "failed", loop.time() - started)
    return await _publish_service(ctx, request, service, result, error)


async def _publish_service(
    ctx: RunContext, request: AnalysisRequest, service: str, result: ServiceResult | None, error: str | None
) -> ServiceFinished:
    """Publish the `service` event of one analyzer's outcome: its result, or `failed` with `error`."""
    if result is not None:
        event = ServiceFinished(
            task=request.task,
            service=service,
            status=result.status,
            result=result,
            error=result.error if result.status != "success" else None,
        )
    else:
        event = ServiceFinished(task=request.task, service=service, status="failed", error=error)
    log.info("service %s: %s", service, event.status, extra={"task_id": request.task.id, "analyzer": service})
    await ctx.publisher.service_finished(event)
    return event


def service_reason(event: ServiceFinished) -> str:
    """One service's share of a task's reason."""
    detail = event.error
    if not detail and event.result is not None:
        troubled = [
            f"{run.tool} {run.status}"
            for run in event.result.tools
            if run.status in ("failed", "timeout", "partial")
        ]
        detail = ", ".join(troubled)
    return f"{event.service} {event.status}: {detail or 'no reason given'}"


def terminal_event(
    request: AnalysisRequest, finished: list[ServiceFinished], app: AppRun | None = None
) -> TerminalEvent:
    """`completed` when every service succeeded, `failed` when all failed, else `partial` with the reasons (an app
    that stopped during the analysis is one of them)."""
    services = [event.service for event in finished]
    troubled = [event for event in finished if event.status != "success"]
    reasons = list(map(service_reason, troubled))
    if app is not None and app.error and not any(app.error in reason for reason in reasons):
        reasons.append(app.error)  # said once: the services that needed the app already give it
    if finished and len([event for event in troubled if event.status == "failed"]) == len(finished):
        return TaskFailed(task=request.task, reason="; ".join(reasons), services=services, app=app)
    if reasons:
        return TaskCompleted(
            task=request.task, status="partial", services=services, reason="; ".join(reasons), app=app
        )
    return TaskCompleted(task=request.task, status="completed", services=services, app=app)
