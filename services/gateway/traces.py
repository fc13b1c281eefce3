"""`GET /api/tasks/{task_id}/trace`: a task's trace as JSON, read from the local span files.

The task row names its trace; the gateway reads that trace's spans from the span files under its own
ASSAY_TRACE_DIR, so `assay trace` finds them whatever folder it runs in. With an OTLP endpoint configured no
span file is written: the answer then has the trace id and no spans, and the trace is in the collector.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
from litestar import get
from litestar.di import NamedDependency

from services.gateway.auth import requires
from services.gateway.resources import Resources
from services.gateway.tasks import TaskIdPath, find_task
from shared.span_files import SpanRecord, span_files, spans_of_traces


class TaskTrace(msgspec.Struct, frozen=True, kw_only=True):
    """A task's trace: its id (None while the task is not recorded yet) and its spans in the local files."""

    task_id: str
    trace_id: str | None
    spans: list[SpanRecord]


def _read_trace(trace_dir: Path, trace_id: str) -> list[SpanRecord]:
    return spans_of_traces(span_files(trace_dir), [trace_id]).get(trace_id, [])


@get(
    "/api/tasks/{task_id:str}/trace",
    summary="A task's trace: every span of it in the local span files",
    tags=["tasks"],
    **requires("read", 404, 422, 503),
)
async def get_task_trace(resources: NamedDependency[Resources], task_id: TaskIdPath) -> TaskTrace:
    detail = await find_task(resources, task_id)
    if detail.trace_id is None:
        return TaskTrace(task_id=task_id, trace_id=None, spans=[])
    spans = await asyncio.to_thread(_read_trace, resources.settings.trace_dir, detail.trace_id)
    return TaskTrace(task_id=task_id, trace_id=detail.trace_id, spans=spans)
