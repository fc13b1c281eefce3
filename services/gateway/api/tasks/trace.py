"""`GET /api/tasks/{task_id}/trace`: a task's trace as JSON, from the trace store or the local span files.

The task row names its trace. With ASSAY_TRACE_QUERY_URL set, the gateway asks that Jaeger-compatible query API
for it (services/gateway/api/tasks/trace_store.py: where an OTLP exporter sends the spans); otherwise it reads the span
files under its own ASSAY_TRACE_DIR, so `assay trace` finds them whatever folder it runs in. With an OTLP endpoint
and no query URL, no span file is written: the answer then has the trace id and no spans.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException

from services.gateway.api.tasks.task import TaskIdPath, find_task
from services.gateway.api.tasks.trace_store import TraceStoreUnavailable, query_trace
from services.gateway.auth import requires
from services.gateway.resources import Resources
from shared.telemetry.span_files import SpanRecord, span_files, spans_of_traces


class TaskTrace(msgspec.Struct, frozen=True, kw_only=True):
    """A task's trace: its id (None while the task is not recorded yet) and its spans (store or local files)."""

    task_id: str
    trace_id: str | None
    spans: list[SpanRecord]


def _read_trace(trace_dir: Path, trace_id: str) -> list[SpanRecord]:
    return spans_of_traces(span_files(trace_dir), [trace_id]).get(trace_id, [])


@get(
    "/api/tasks/{task_id:str}/trace",
    summary="A task's trace: every span of it in the trace store or the local span files",
    tags=["tasks"],
    **requires("read", 404, 422, 503),
)
async def get_task_trace(resources: NamedDependency[Resources], task_id: TaskIdPath) -> TaskTrace:
    detail = await find_task(resources, task_id)
    if detail.trace_id is None:
        return TaskTrace(task_id=task_id, trace_id=None, spans=[])
    query_url = resources.settings.trace_query_url
    if query_url is None:
        spans = await asyncio.to_thread(_read_trace, resources.settings.trace_dir, detail.trace_id)
    else:
        try:
            spans = await query_trace(query_url, detail.trace_id)
        except TraceStoreUnavailable as error:
            raise ServiceUnavailableException(str(error)) from error
    return TaskTrace(task_id=task_id, trace_id=detail.trace_id, spans=spans)
