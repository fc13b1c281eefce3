"""The Celery baseline's HTTP endpoint, in the gateway's framework (Litestar on uvicorn): `POST /api/analysis/run`
takes the same body (`RunRequest`), records the task `pending` with the persister's `record_request`, enqueues it
for the Celery worker and answers 202 with the task id, as Assay's gateway does.

Run: `python -m benchmarks.celery_gateway --port P` (the Celery system sets the database URL and Redis).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import uvicorn
from litestar import Litestar, Response, get, post
from litestar.datastructures import State
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchmarks.celery_worker import analyze
from services.gateway.schemas import Accepted, Links, RunRequest
from services.persister.database import record_request
from shared.operations.config import load_settings
from shared.store.database import create_engine, migrate, sessions
from shared.wire.catalog import planned_tools
from shared.wire.messages import AnalysisRequest
from shared.wire.tasks import TaskRef, new_task_id


@asynccontextmanager
async def _database(app: Litestar) -> AsyncIterator[None]:
    settings = load_settings()
    engine = create_engine(settings.database_url)
    await migrate(engine)
    app.state.sessions = sessions(engine)
    app.state.deadline_s = settings.task_deadline_s
    try:
        yield
    finally:
        await engine.dispose()


@post("/api/analysis/run", status_code=202)
async def run_analysis(data: JSONBody[RunRequest], state: State) -> Response[Accepted]:
    """Record the task as pending, then enqueue it (the Redis client blocks: it runs in a thread)."""
    task = TaskRef(
        id=new_task_id(),
        model_slug=data.model_slug,
        app_number=data.app_number,
        analysis_type=data.analysis_type,
    )
    request = AnalysisRequest(
        task=task,
        tools=list(dict.fromkeys(data.tools)),
        priority=data.priority,
        options=msgspec.to_builtins(data.options),
        deadline_s=data.deadline_s or float(state.deadline_s),
    )
    task_sessions: async_sessionmaker[AsyncSession] = state.sessions
    await record_request(task_sessions, request, None)
    payload = msgspec.json.encode(request).decode()
    await asyncio.to_thread(analyze.apply_async, (payload,))
    links = Links(self_=f"/api/tasks/{task.id}", events=f"/api/tasks/{task.id}/events")
    body = Accepted(
        task_id=task.id,
        status="pending",
        model_slug=task.model_slug,
        app_number=task.app_number,
        analysis_type=task.analysis_type,
        tools=planned_tools(task.analysis_type, request.tools),
        priority=request.priority,
        trace_id=None,
        links=links,
    )
    return Response(body, status_code=202)


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def create_app() -> Litestar:
    return Litestar(route_handlers=[run_analysis, healthz], lifespan=[_database], logging_config=None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.celery_gateway")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning")
