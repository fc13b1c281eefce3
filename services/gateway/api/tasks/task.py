"""Task routes: list, look up, list findings, cancel. Reads come from the database the persister writes, with
the tasks bucket covering a task accepted moments ago that the persister has not recorded yet."""

from __future__ import annotations

import logging
from typing import Annotated

import msgspec
from litestar import Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException, ServiceUnavailableException
from litestar.params import FromQuery, PathParameter, QueryParameter

from services.gateway.api.tasks.accepted import accepted_request, pending_detail
from services.gateway.auth import requires
from services.gateway.publisher import NatsUnavailable, publish_cancel
from services.gateway.queries import list_tasks, task_detail, task_findings, task_status
from services.gateway.resources import DATABASE_ERRORS, NATS_ERRORS, Resources
from services.gateway.schemas import Cancelling, FindingPage, TaskDetail, TaskPage
from shared.results.findings import Severity
from shared.wire.messages import BATCH_ID_PATTERN, TERMINAL_STATUSES, CancelRequest, TaskStatus
from shared.wire.tasks import MODEL_SLUG_PATTERN, TASK_ID_PATTERN, AnalysisType

log = logging.getLogger(__name__)

TaskIdPath = Annotated[str, PathParameter(pattern=TASK_ID_PATTERN, description="task_ + 12 lowercase hex")]
# Paging past this many rows is not a use; unbounded, an offset overflows the database's 64-bit integer.
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000)]


async def find_task(resources: Resources, task_id: str) -> TaskDetail:
    """The task from the database, else from the tasks bucket as `pending`; 404 when neither knows it.

    When the database cannot be read (not migrated yet, locked, down) the bucket still answers for a fresh task;
    only if neither can answer is it a 503 rather than a misleading 404.
    """
    problem: str | None = None
    try:
        detail = await task_detail(resources.sessions, task_id)
    except DATABASE_ERRORS as error:
        log.warning("database read failed: %s", error, extra={"task_id": task_id})
        detail, problem = None, f"database: {error.__class__.__name__}"
    if detail is not None:
        return detail
    try:
        request = await accepted_request(resources.tasks, task_id)
    except NATS_ERRORS as error:
        request, problem = None, f"{problem + '; ' if problem else ''}tasks bucket: {error!r}"
    if request is not None:
        return pending_detail(request)
    if problem:
        raise ServiceUnavailableException(f"cannot look up {task_id} right now ({problem})")
    raise NotFoundException(f"task {task_id} not found")


@get("/api/tasks", summary="List tasks, newest first", tags=["tasks"], **requires("read", 422, 503))
async def list_all_tasks(
    resources: NamedDependency[Resources],
    model_slug: Annotated[str | None, QueryParameter(pattern=MODEL_SLUG_PATTERN)] = None,
    app_number: Annotated[int | None, QueryParameter(ge=1, le=99999)] = None,
    status: FromQuery[TaskStatus | None] = None,
    analysis_type: FromQuery[AnalysisType | None] = None,
    batch: Annotated[
        str | None, QueryParameter(pattern=BATCH_ID_PATTERN, description="only this batch's")
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> TaskPage:
    filters = {
        "model_slug": model_slug,
        "app_number": app_number,
        "status": status,
        "analysis_type": analysis_type,
        "batch_id": batch,
    }
    try:
        return await list_tasks(resources.sessions, filters, limit, offset)
    except DATABASE_ERRORS as error:
        raise ServiceUnavailableException(f"database unavailable: {error.__class__.__name__}") from error


@get(
    "/api/tasks/{task_id:str}",
    summary="One task: status, progress, services, tool runs, finding counts",
    tags=["tasks"],
    **requires("read", 404, 422, 503),
)
async def get_task(resources: NamedDependency[Resources], task_id: TaskIdPath) -> TaskDetail:
    detail = await find_task(resources, task_id)
    if detail.result_dir is None:
        return detail
    # Where the folder is on the gateway's machine, so a client in any folder can print a path that resolves.
    return msgspec.structs.replace(
        detail, result_path=str(resources.settings.results_dir / detail.result_dir)
    )


@get(
    "/api/tasks/{task_id:str}/findings",
    summary="A task's findings, most severe first, paginated",
    tags=["tasks"],
    **requires("read", 404, 422, 503),
)
async def get_findings(
    resources: NamedDependency[Resources],
    task_id: TaskIdPath,
    tool: Annotated[str | None, QueryParameter(max_length=64)] = None,
    severity: FromQuery[Severity | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> FindingPage:
    await find_task(resources, task_id)  # 404 for an unknown task rather than an empty page
    try:
        return await task_findings(
            resources.sessions, task_id, {"tool": tool, "severity": severity}, limit, offset
        )
    except DATABASE_ERRORS as error:
        raise ServiceUnavailableException(f"database unavailable: {error.__class__.__name__}") from error


@post(
    "/api/tasks/{task_id:str}/cancel",
    status_code=202,
    summary="Ask the task to stop",
    tags=["tasks"],
    **requires("submit", 404, 409, 422, 503),
)
async def cancel_task(resources: NamedDependency[Resources], task_id: TaskIdPath) -> Response[Cancelling]:
    task = await find_task(resources, task_id)
    try:
        # The database may have moved on since find_task answered from the bucket; check the latest word.
        status = await task_status(resources.sessions, task_id) or task.status
    except DATABASE_ERRORS:
        status = task.status
    if status in TERMINAL_STATUSES:
        raise ClientException(status_code=409, detail=f"task {task_id} is already {status}")
    try:
        await publish_cancel(resources.nats, resources.tasks, CancelRequest(task_id=task_id))
    except NatsUnavailable as error:
        raise ServiceUnavailableException(f"NATS unavailable, cancel not sent: {error}") from error
    return Response(Cancelling(task_id=task_id), status_code=202)
