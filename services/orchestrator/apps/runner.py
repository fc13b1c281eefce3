"""The app runner: for an analysis that needs the app running (and names no target URLs), prepare the app, start
it in its sandbox, hand its URLs to the analysis, and stop it when the analysis ends, fails or is cancelled.

At most `ASSAY_APP_CONCURRENCY` apps run at once per orchestrator (a budget later shared by batches); each run has
its own folder under `<var>/apps/runs/`, its own copy of the app and its own ports. What happened is kept in an
`AppRun` record (for `services/app.json`) and in an `app.run` span of the task's trace.

For a static analysis whose pylint or mypy read the app's imports, it only prepares the app's virtualenv (the same
cached, sandboxed preparation; the app never starts) and names it for the static analyzer (`python_environment`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import msgspec
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from services.orchestrator.apps.errors import AppError, AppNotStarted, PrepareFailed, SandboxUnavailable
from services.orchestrator.apps.launch import (
    LaunchConfig,
    Launched,
    exit_reason,
    found_listening,
    launch,
    output_tail,
    stop,
    wait_ready,
)
from services.orchestrator.apps.prep_sandbox import PrepBox
from services.orchestrator.apps.prepare import PrepareConfig, prepare, prepare_venv
from services.orchestrator.apps.sandbox import APP_ROOT, check_available, make_reachable
from shared.operations.config import Settings
from shared.store.file_modes import open_way_to_apps
from shared.store.paths import app_dir, prepared_cache
from shared.telemetry.tracing import TASK_ID_ATTRIBUTE
from shared.wire.app_run import AppRun, SandboxSettings
from shared.wire.catalog import plan
from shared.wire.messages import AnalysisRequest, utcnow
from shared.wire.protocol import PythonEnvironment

log = logging.getLogger(__name__)
tracer = trace.get_tracer("services.orchestrator")

RUNNING_APP_SERVICES = frozenset({"dynamic", "performance"})


@dataclass
class AppSlot:
    """Where the runner leaves the record of a task's app run, for the task's terminal event."""

    record: AppRun | None = None


def sandbox_settings(settings: Settings) -> SandboxSettings:
    sandboxed = settings.app_sandbox == "bwrap"
    return SandboxSettings(
        mode=settings.app_sandbox,
        network="own namespace, loopback only; reached through Assay's forwarded ports"
        if sandboxed
        else "the machine's (unsandboxed)",
        writable=[f"{APP_ROOT} and /tmp (a private {settings.app_disk_mb} MB disk)"]
        if sandboxed
        else ["everything the orchestrator's user may write"],
        hidden="all but /usr, /etc, /opt and the app: no results, database, var/ or home folders"
        if sandboxed
        else "nothing (unsandboxed)",
        cpu_s=settings.app_cpu_s,
        memory_mb=settings.app_memory_mb,
        processes=settings.app_processes,
        open_files=settings.app_open_files,
        disk_mb=settings.app_disk_mb,
        wall_s=settings.app_wall_s,
    )


class AppRunner:
    """Runs the apps of one orchestrator replica, at most `settings.app_concurrency` at once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.apps_dir = settings.apps_dir
        self.work_dir = settings.app_work_dir
        self.runs_dir = settings.app_work_dir / "runs"
        self.sandbox = sandbox_settings(settings)
        self.budget = asyncio.Semaphore(max(1, settings.app_concurrency))
        self._preparing: set[asyncio.Task[Path | None]] = (
            set()
        )  # static tasks' preparations, waited for or not
        box = PrepBox(
            settings=msgspec.structs.replace(self.sandbox, memory_mb=settings.app_prepare_memory_mb),
            index_hosts=frozenset(settings.package_index_hosts + settings.app_index_allow),
            python=settings.app_python,
            timeout_s=settings.app_prepare_timeout_s,
        )
        self.prepare_config = PrepareConfig(
            python=settings.app_python,
            cache_dir=prepared_cache(settings.app_work_dir),
            timeout_s=settings.app_prepare_timeout_s,
            box=box if settings.app_sandbox == "bwrap" else None,
            index_allow=frozenset(settings.app_index_allow),
            failure_memory_s=settings.app_prepare_failure_memory_s,
        )
        self.launch_config = LaunchConfig(
            settings=self.sandbox,
            python=settings.app_python,
            start_timeout_s=settings.app_start_timeout_s,
            port_range=settings.port_range,
        )
        if settings.app_sandbox == "off":
            log.warning("ASSAY_APP_SANDBOX=off: apps run UNSANDBOXED, with this user's rights and network")
        try:
            check_available(settings.app_sandbox)
        except SandboxUnavailable as error:
            log.error("%s; analyses that need a running app will fail", error)

    def needed(self, request: AnalysisRequest) -> bool:
        """Whether the request needs the app running and leaves it to Assay (names no target URLs)."""
        if request.target_urls:
            return False
        return bool(RUNNING_APP_SERVICES & set(plan(request.task.analysis_type, request.tools)))

    async def python_environment(
        self, request: AnalysisRequest, within_s: float | None = None
    ) -> PythonEnvironment | None:
        """The app's virtualenv for the static analyzer's pylint and mypy, prepared as a run's is (same cache, same
        sandbox; the app never starts), or the reason there is none; None when the app has no requirements file.
        Waited for at most ASSAY_STATIC_ENV_WAIT_S, and at most `within_s`, a place in the runner's budget included;
        a preparation still running then goes on into the cache (for the next task), unwaited.

        Only in a sandbox: with ASSAY_APP_SANDBOX=off a static analysis never runs the app's build code."""
        source = app_dir(self.apps_dir, request.task.model_slug, request.task.app_number)
        if not await asyncio.to_thread((source / "backend" / "requirements.txt").is_file):
            return None
        wait_s = self.settings.static_env_wait_s
        if within_s is not None and wait_s > 0:
            wait_s = max(1.0, min(wait_s, within_s))
        if wait_s <= 0:
            return PythonEnvironment(reason="not prepared: ASSAY_STATIC_ENV_WAIT_S is 0")
        if self.prepare_config.box is None:
            return PythonEnvironment(
                reason="not prepared: ASSAY_APP_SANDBOX=off (prepared only in a sandbox)"
            )
        try:
            check_available(self.sandbox.mode)
        except SandboxUnavailable as error:
            return PythonEnvironment(reason=f"not prepared: {error}")
        copy = self.runs_dir / f"{request.task.id}-env-{secrets.token_hex(6)}"
        building = asyncio.Event()
        preparing: asyncio.Task[Path | None] | None = None
        try:
            await asyncio.to_thread(open_way_to_apps, self.settings)
            await asyncio.to_thread(make_reachable, self.work_dir)
            with tracer.start_as_current_span("app.prepare", attributes={TASK_ID_ATTRIBUTE: request.task.id}):
                preparing = asyncio.create_task(
                    self._prepare_venv(self._prepare_config(request), source, copy, building)
                )
                self._preparing.add(preparing)
                preparing.add_done_callback(self._prepared)
                async with asyncio.timeout(wait_s):
                    venv = await asyncio.shield(preparing)
        except TimeoutError:
            if preparing is not None and not building.is_set():
                preparing.cancel()  # still queued for the budget: nothing built yet, nothing lost
            return PythonEnvironment(
                reason=f"its preparation did not end within {wait_s:g} s (ASSAY_STATIC_ENV_WAIT_S, or half the "
                "task's time left)"
            )
        except AppNotStarted as error:
            return PythonEnvironment(reason=f"its preparation failed: {str(error).splitlines()[0]}")
        except OSError as error:
            return PythonEnvironment(reason=f"its preparation failed: {error}")
        return PythonEnvironment(venv=venv.name) if venv is not None else None

    def _prepare_config(self, request: AnalysisRequest) -> PrepareConfig:
        """How this task's preparation runs: a fresh task builds again what failed before."""
        return (
            replace(self.prepare_config, fresh=True) if request.options.get("fresh") else self.prepare_config
        )

    async def _prepare_venv(
        self, config: PrepareConfig, source: Path, copy: Path, building: asyncio.Event
    ) -> Path | None:
        """A static task's preparation of the virtualenv, within the runner's budget (set `building` once it has a
        place in it). A task of its own, which the static task's bounded wait leaves running: a build slower than
        that wait still reaches the cache for the next task, and a run waiting on the same build is not made to
        start it again. Its copy of the app goes when it ends."""
        try:
            async with self.budget:
                building.set()
                return await prepare_venv(config, source, copy / "app")
        finally:
            await asyncio.to_thread(shutil.rmtree, copy, True)

    def _prepared(self, task: asyncio.Task[Path | None]) -> None:
        """A preparation ended, waited for or not: its failure was said to whoever waited (or to no one)."""
        self._preparing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("a static task's preparation failed: %s", str(task.exception()).splitlines()[0])

    async def run(
        self,
        request: AnalysisRequest,
        slot: AppSlot,
        analyze: Callable[[AnalysisRequest, dict[str, int]], Awaitable[None]],
    ) -> None:
        """`analyze(request with the app's URLs, its BACKEND_PORT/FRONTEND_PORT)` while the app runs; AppNotStarted
        when it cannot be started.

        The app is stopped however `analyze` ends (cancellation included) and `slot.record` says what happened."""
        check_available(self.sandbox.mode)
        # Whichever process runs apps (the orchestrator, `assay replay`), as root it hands the sandbox user what it
        # needs, here: its own files stay private otherwise (ASSAY_UMASK).
        await asyncio.to_thread(open_way_to_apps, self.settings)
        await asyncio.to_thread(make_reachable, self.work_dir)
        async with self.budget:
            run_id = secrets.token_hex(6)
            run_dir = self.runs_dir / f"{request.task.id}-{run_id}"
            attributes = {TASK_ID_ATTRIBUTE: request.task.id, "assay.app.run_id": run_id}
            with tracer.start_as_current_span("app.run", attributes=attributes) as span:
                span.set_attribute("assay.app.sandbox", self.sandbox.mode)
                try:
                    await self._run(request, run_id, run_dir, slot, analyze)
                except AppNotStarted as error:
                    span.set_status(Status(StatusCode.ERROR, str(error).splitlines()[0]))
                    raise
                finally:
                    if slot.record is not None:
                        span.set_attribute("assay.app.source_hash", slot.record.source_hash)
                        span.set_attribute("assay.app.exit_status", slot.record.exit_status or 0)
                        span.set_attribute("assay.app.ended", slot.record.ended)
                    await asyncio.to_thread(shutil.rmtree, run_dir, True)

    async def _run(
        self,
        request: AnalysisRequest,
        run_id: str,
        run_dir: Path,
        slot: AppSlot,
        analyze: Callable[[AnalysisRequest, dict[str, int]], Awaitable[None]],
    ) -> None:
        extra = {"task_id": request.task.id}
        record = AppRun(run_id=run_id, source_hash="", sandbox=self.sandbox, command=[])
        try:
            source = app_dir(self.apps_dir, request.task.model_slug, request.task.app_number)
            if not await asyncio.to_thread(source.is_dir):
                raise AppNotStarted(f"app did not start: {source} does not exist")
            with tracer.start_as_current_span("app.prepare"):
                prepared = await prepare(self._prepare_config(request), source, run_dir / "app")
            record = msgspec.structs.replace(
                record,
                source_hash=prepared.source_hash,
                prepare_log=prepared.log,
                python=prepared.python.path,
                python_why=prepared.python.why,
                relaxed_requirements=prepared.relaxed,
            )
            with tracer.start_as_current_span("app.start"):
                launched = await launch(self.launch_config, prepared, run_dir, request.options)
        except (AppNotStarted, OSError) as error:
            reason = str(error) if isinstance(error, AppNotStarted) else f"app did not start: {error}"
            if isinstance(error, PrepareFailed):
                record = msgspec.structs.replace(
                    record, prepare_log=error.log, failing_requirement=error.failing
                )
            slot.record = msgspec.structs.replace(record, error=reason.splitlines()[0])
            raise AppNotStarted(reason) from error
        record = msgspec.structs.replace(
            record,
            command=launched.command,
            processes=launched.processes,
            start_rule=launched.start.rule if launched.start else "",
            start_why=launched.start.why if launched.start else "",
            dependencies=launched.dependencies,
            urls=launched.urls,
            started_at=utcnow(),
        )
        try:
            try:
                await wait_ready(self.launch_config, launched)
            except AppNotStarted as error:
                record = msgspec.structs.replace(record, error=str(error).splitlines()[0])
                raise
            ready_at = utcnow()
            ready_after_s = round((ready_at - (record.started_at or ready_at)).total_seconds(), 3)
            record = msgspec.structs.replace(record, ready_after_s=ready_after_s)
            log.info("app %s answers at %s", run_id, ", ".join(launched.urls.values()), extra=extra)
            urls = list(launched.urls.values())  # the backend first: analyzers take the first as the API
            async with asyncio.timeout(self.sandbox.wall_s):
                await analyze(msgspec.structs.replace(request, target_urls=urls), launched.port_variables())
        except TimeoutError:
            reason = f"app stopped: its wall time of {self.sandbox.wall_s:g} s (ASSAY_APP_WALL_S) ran out"
            record = msgspec.structs.replace(record, error=reason)
            raise AppError(reason) from None
        finally:
            slot.record = await self._stopped(record, launched)

    async def _stopped(self, record: AppRun, launched: Launched) -> AppRun:
        died = launched.process.returncode is not None
        await stop(launched)
        tail = await asyncio.to_thread(output_tail, launched)
        ended = "stopped by Assay" if not died else await exit_reason(launched)
        error = record.error
        if died and error is None:
            error = f"app stopped during the analysis: {ended}"
        return msgspec.structs.replace(
            record,
            stopped_at=utcnow(),
            exit_status=launched.process.returncode,
            ended=ended,
            output_tail=tail,
            error=error,
            listening=found_listening(launched),  # every note read by now
        )
