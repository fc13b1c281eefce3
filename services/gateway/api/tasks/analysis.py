"""`POST /api/analysis/run`: validate a request, accept it as a task, queue it by priority."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException, ServiceUnavailableException
from litestar.params import JSONBody
from opentelemetry import trace

from services.gateway.auth import requires
from services.gateway.errors import invalid
from services.gateway.idempotency import IdempotencyHeader, NewIds, idempotent
from services.gateway.publisher import NatsUnavailable, publish_request
from services.gateway.resources import Resources
from services.gateway.schemas import Accepted, Links, RunRequest
from shared.operations.app_env import app_env
from shared.operations.config import Settings
from shared.operations.target_policy import TargetNotAllowed, target_policy
from shared.results.source_size import total_lines
from shared.store.paths import UnsafePathError, app_dir
from shared.telemetry.metrics import record_task_accepted
from shared.telemetry.tracing import TASK_ID_ATTRIBUTE, current_trace_id
from shared.wire.catalog import offered_tools, planned_tools, unknown_tools
from shared.wire.messages import AnalysisRequest, encode
from shared.wire.tasks import TaskRef

log = logging.getLogger(__name__)


def _check_tools(data: RunRequest) -> None:
    unknown = unknown_tools(data.analysis_type, data.tools)
    if unknown:
        offered = offered_tools(data.analysis_type)
        raise invalid(
            "tools",
            f"unknown for analysis type {data.analysis_type!r}: {', '.join(unknown)}; "
            f"allowed: {', '.join(offered)}",
        )


def _app_source_lines(apps_dir: Path, data: RunRequest) -> int | None:
    """The app's non-blank source lines (what the size reports divide by, as analyzed); None when it does not
    exist. One hand-off to a thread for both: a stat on a network share can stall, and counting reads the files."""
    folder = app_dir(apps_dir, data.model_slug, data.app_number)
    return total_lines(folder) if folder.is_dir() else None


async def _check_app_source_lines(resources: Resources, data: RunRequest) -> int:
    try:
        lines = await asyncio.to_thread(_app_source_lines, resources.settings.apps_dir, data)
    except UnsafePathError as error:
        raise invalid("model_slug", str(error)) from error
    if lines is None:
        raise NotFoundException(f"app {data.model_slug}/app{data.app_number} not found under the apps root")
    return lines


# Room left in a NATS message for the headers (trace context, message id) around the request's JSON.
HEADER_ROOM_BYTES = 1024


def _check_fits_nats(max_payload: int, request: AnalysisRequest) -> None:
    size = len(encode(request))
    if size + HEADER_ROOM_BYTES > max_payload:
        raise ClientException(
            status_code=413,
            detail=f"the request is {size} bytes encoded; NATS carries at most {max_payload - HEADER_ROOM_BYTES}: "
            "send fewer target_urls or shorter options",
        )


async def _check_targets(settings: Settings, data: RunRequest) -> None:
    """Every target URL within the targets policy of the app (its .env ports on loopback, ASSAY_TARGET_ALLOW)."""
    if not data.target_urls:
        return  # the analyzers use the app's .env ports on loopback, which the policy always allows
    folder = app_dir(settings.apps_dir, data.model_slug, data.app_number)
    policy = target_policy(settings, await asyncio.to_thread(app_env, folder))
    for url in data.target_urls:
        try:
            policy.check(url)
        except TargetNotAllowed as error:
            raise invalid("target_urls", str(error)) from error


ROUTE = "/api/analysis/run"


@post(
    ROUTE,
    status_code=202,
    summary="Run an analysis of one generated app",
    description=(
        "Accepts the request as a task (202 with its id, trace id and links), queues it on "
        "`assay.requests.<priority>`. 422 names the invalid field; 404 when the app folder does not exist; "
        "503 when NATS cannot take the request (nothing is recorded then); 413 when it is too large to carry. "
        "With an `Idempotency-Key` header, a retry gets the first answer again (409 while that is still being "
        "handled; 422 when the key was used for another body)."
    ),
    tags=["analysis"],
    **requires("submit", 404, 409, 413, 415, 422, 503),
)
async def run_analysis(
    request: Request[Any, Any, Any],
    data: JSONBody[RunRequest],
    resources: NamedDependency[Resources],
    idempotency_key: IdempotencyHeader = None,
) -> Response[Accepted]:
    return await idempotent(
        request, resources, idempotency_key, ROUTE, data, lambda ids: _accept(data, resources, ids), Accepted
    )


async def _accept(data: RunRequest, resources: Resources, ids: NewIds) -> Response[Accepted]:
    """Validate the request, queue it as a new task, answer 202."""
    _check_tools(data)
    source_lines = await _check_app_source_lines(resources, data)
    await _check_targets(resources.settings, data)
    tools = list(dict.fromkeys(data.tools))  # keep the order, drop repeats
    task_id = ids.task()
    trace.get_current_span().set_attribute(TASK_ID_ATTRIBUTE, task_id)
    task = TaskRef(
        id=task_id, model_slug=data.model_slug, app_number=data.app_number, analysis_type=data.analysis_type
    )
    request = AnalysisRequest(
        event_id=ids.request(),
        task=task,
        tools=tools,
        priority=data.priority,
        target_urls=list(data.target_urls),
        options=msgspec.to_builtins(data.options),
        deadline_s=data.deadline_s or resources.settings.task_deadline_s,
        source_lines=source_lines,
    )
    body = await queue(resources, request)
    return Response(body, status_code=202, headers={"Location": body.links.self_})


async def queue(resources: Resources, request: AnalysisRequest) -> Accepted:
    """Queue a request as a new task (413 when NATS cannot carry it, 503 when NATS does not take it); the answer
    that says so."""
    task = request.task
    _check_fits_nats(resources.nats.max_payload, request)
    try:
        await publish_request(
            resources.nats, resources.js, resources.tasks, request, patience_s=resources.publish_patience_s
        )
    except NatsUnavailable as error:
        log.warning("refused a request: %s", error, extra={"task_id": task.id})
        raise ServiceUnavailableException(f"NATS unavailable, request not accepted: {error}") from error
    record_task_accepted(task.analysis_type)
    return Accepted(
        task_id=task.id,
        status="pending",
        model_slug=task.model_slug,
        app_number=task.app_number,
        analysis_type=task.analysis_type,
        tools=planned_tools(task.analysis_type, request.tools),
        priority=request.priority,
        trace_id=current_trace_id(),
        links=Links(self_=f"/api/tasks/{task.id}", events=f"/api/tasks/{task.id}/events"),
    )
