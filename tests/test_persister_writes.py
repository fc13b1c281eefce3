"""The persister's task-row writes give the same row whatever order a task's messages arrive in (each change is one
statement; a message before its task's row inserts the row as `pending` first), on a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.persister.database import record_progress, record_request, record_started
from shared.store.database import create_engine, migrate, sessions
from shared.store.models import Task
from shared.wire.messages import AnalysisRequest, TaskProgress, TaskStarted, utcnow
from shared.wire.tasks import TaskRef, new_task_id

PLANNED = ["bandit", "ruff", "semgrep"]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


def messages(tools: list[str]) -> tuple[AnalysisRequest, TaskStarted, TaskProgress]:
    """A task's request, started and progress, the request the earliest."""
    task = TaskRef(id=new_task_id(), model_slug="openai_codex-mini", app_number=1, analysis_type="security")
    accepted = utcnow() - timedelta(seconds=5)
    request = AnalysisRequest(task=task, tools=tools, priority="high", occurred_at=accepted)
    started = TaskStarted(
        task=task,
        services=["static"],
        tools=PLANNED,
        priority="high",
        worker="test:1",
        occurred_at=accepted + timedelta(seconds=1),
    )
    progress = TaskProgress(
        task=task,
        service="static",
        stage="running",
        percent=40.0,
        occurred_at=accepted + timedelta(seconds=2),
    )
    return request, started, progress


async def row(engine: AsyncEngine, task_id: str) -> dict[str, object]:
    async with sessions(engine)() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        columns = ("status", "priority", "tools", "services", "worker", "trace_id", "progress_percent")
        return {name: getattr(task, name) for name in columns} | {"created_at": task.created_at}


@pytest.mark.parametrize("tools", [["bandit"], []], ids=["tools named", "no tools named"])
async def test_events_before_their_request_leave_the_row_the_usual_order_leaves(
    engine: AsyncEngine, tools: list[str]
) -> None:
    factory = sessions(engine)
    in_order = messages(tools)
    request, started, progress = in_order
    await record_request(factory, request, "a" * 32)
    await record_started(factory, started, None)
    await record_progress(factory, progress)
    reversed_ = messages(tools)
    request_, started_, progress_ = reversed_
    await record_progress(factory, progress_)  # creates the row
    await record_started(factory, started_, "b" * 32)
    await record_request(factory, request_, "a" * 32)

    usual = await row(engine, request.task.id)
    other = await row(engine, request_.task.id)
    # The request's tools when it named some, else those the plan runs; the earliest time is the creation.
    assert usual["tools"] == (tools or PLANNED)
    assert usual["created_at"] == request.occurred_at
    assert usual["trace_id"] == "a" * 32
    assert other["created_at"] == request_.occurred_at
    assert other["trace_id"] == "b" * 32  # the first trace seen stays
    assert {**usual, "created_at": None, "trace_id": None} == {**other, "created_at": None, "trace_id": None}
    assert usual == {
        "status": "running",
        "priority": "high",
        "tools": tools or PLANNED,
        "services": ["static"],
        "worker": "test:1",
        "trace_id": "a" * 32,
        "progress_percent": 40.0,
        "created_at": request.occurred_at,
    }


async def test_progress_and_started_leave_a_terminal_task_alone(engine: AsyncEngine) -> None:
    factory = sessions(engine)
    request, started, progress = messages([])
    await record_request(factory, request, None)
    async with factory() as session, session.begin():
        task = await session.get(Task, request.task.id)
        assert task is not None
        task.status, task.progress_percent = "cancelled", 0.0
    await record_started(factory, started, None)
    await record_progress(factory, msgspec.structs.replace(progress, percent=90.0))

    assert (await row(engine, request.task.id))["status"] == "cancelled"
    assert (await row(engine, request.task.id))["progress_percent"] == 0.0


async def test_a_request_after_its_task_ended_adds_what_only_it_knows_and_changes_nothing_else(
    engine: AsyncEngine,
) -> None:
    factory = sessions(engine)
    request, started, _progress = messages(["bandit"])
    await record_started(factory, started, None)  # creates the row
    async with factory() as session, session.begin():
        task = await session.get(Task, request.task.id)
        assert task is not None
        task.status = "failed"
    batch = "batch_0123456789ab"
    late = msgspec.structs.replace(request, batch_id=batch, source_lines=120, waived_rules=["CWE-605"])
    await record_request(factory, late, "c" * 32)

    async with factory() as session:
        task = await session.get(Task, request.task.id)
        assert task is not None
        assert (task.batch_id, task.source_lines, task.waived_rules) == (batch, 120, ["CWE-605"])
        assert (task.status, task.tools, task.trace_id) == ("failed", PLANNED, None)  # the ended task's own
