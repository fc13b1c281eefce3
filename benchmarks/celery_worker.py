"""The Celery baseline's worker: for each request, the same rows and the same result folder as Assay, written by
the persister's own code.

Per task it records the task `running` (`record_started`), builds the no-op analyzer's result with the same tool
and `run_tools`, records the service outcome (service run, tool row, 5 findings: `record_service`), then finishes
the task with the persister's `finish` (the atomic, fsynced folder with manifest, then the terminal row). What it
leaves out is what a single process does not need: NATS, the WebSocket hop and the staging file.

Run: `celery -A benchmarks.celery_worker worker --pool prefork --concurrency 2` with ASSAY_BENCH_REDIS_URL,
ASSAY_BENCH_CELERY_QUEUE, ASSAY_DATABASE_URL and ASSAY_RESULTS_DIR set (the Celery system does that).
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from typing import cast

import msgspec
from celery import Celery
from nats.js import JetStreamContext

from benchmarks.noop_analyzer import SERVICE, TOOL, noop_result
from services.orchestrator.runner import terminal_event
from services.persister import database, lookups
from services.persister.completion import PersisterContext, finish
from services.persister.document import Ending
from services.persister.sessions import persister_sessions
from services.persister.staging import StagedService
from shared.operations.config import Settings, load_settings
from shared.store.database import create_engine
from shared.wire.messages import AnalysisRequest, ServiceFinished, TaskCompleted, TaskStarted, as_utc

QUEUE_VARIABLE = "ASSAY_BENCH_CELERY_QUEUE"
TASK_NAME = "assay_bench.analyze"

app = Celery("assay_bench", broker=os.environ.get("ASSAY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_default_queue=os.environ.get(QUEUE_VARIABLE, "assay-bench"),
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@dataclass(frozen=True)
class WorkerState:
    """What one worker process keeps between tasks: its event loop, settings and persister context."""

    runner: asyncio.Runner
    settings: Settings
    ctx: PersisterContext


_state: WorkerState | None = None  # one per worker process, made by its first task


def worker_state() -> WorkerState:
    global _state
    if _state is None:
        settings = load_settings()
        engine = create_engine(settings.database_url)
        ctx = PersisterContext(
            # `finish` never touches JetStream: there is none on this side.
            js=cast(JetStreamContext, None),
            # The persister's own write path: group commit in one writer thread.
            sessions=persister_sessions(engine),
            results_root=settings.results_dir,
            max_deliver=settings.max_deliver,
            redelivery_margin_s=settings.redelivery_margin_s,
            db_system=engine.dialect.name,
        )
        _state = WorkerState(runner=asyncio.Runner(), settings=settings, ctx=ctx)
    return _state


async def persist(state: WorkerState, request: AnalysisRequest) -> None:
    """Run the no-op analysis of `request` and persist it as Assay's persister does."""
    sessions_ = state.ctx.sessions
    started = TaskStarted(
        task=request.task,
        services=[SERVICE],
        tools=[TOOL],
        priority=request.priority,
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )
    await database.record_started(sessions_, started, None)
    result = await noop_result(request, state.settings)
    service = ServiceFinished(task=request.task, service=SERVICE, status=result.status, result=result)
    await database.record_service(sessions_, service, result, None)
    task = await lookups.load_task(sessions_, request.task.id)
    if task is None:
        raise RuntimeError(f"task {request.task.id} has no row after its service was recorded")
    terminal = terminal_event(request, [service])
    staged = StagedService(service=SERVICE, status=service.status, event_id=service.event_id, result=result)
    status = terminal.status if isinstance(terminal, TaskCompleted) else "failed"
    finished_at = as_utc(terminal.occurred_at)
    ending = Ending(status=status, reason=terminal.reason, finished_at=finished_at)
    await finish(
        state.ctx, task, ending, [staged], terminal.event_id, "completed" if status != "failed" else "failed"
    )


@app.task(name=TASK_NAME)  # type: ignore[untyped-decorator]  # Celery ships no types
def analyze(payload: str) -> None:
    """The Celery task: `payload` is the AnalysisRequest as JSON."""
    state = worker_state()
    state.runner.run(persist(state, msgspec.json.decode(payload, type=AnalysisRequest)))
