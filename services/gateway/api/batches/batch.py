"""Batches: many analyses queued at once (`POST /api/batches`), followed as one (`GET`, SSE) and cancelled as one.

Each task of a batch is queued exactly as `POST /api/analysis/run` queues one, with the batch id on its request;
the persister stores it on the task row. The batch's list of tasks is put in the tasks bucket first
(`batch.<batch_id>`), so the batch answers before any of its tasks is recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException, ServiceUnavailableException
from litestar.params import JSONBody, PathParameter
from litestar.response import Stream
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from opentelemetry import context as otel_context
from opentelemetry import trace

from services.gateway.api.app_folders import app_folders
from services.gateway.api.batches.plan import (
    BatchProgress,
    BatchRecord,
    BatchRequest,
    BatchTask,
    batch_problem,
    batch_progress,
    recorded_batch,
    select_apps,
    unknown_models,
)
from services.gateway.api.tasks.events import KEEPALIVE_S, sse
from services.gateway.auth import requires
from services.gateway.errors import invalid
from services.gateway.idempotency import IdempotencyHeader, NewIds, idempotent
from services.gateway.publisher import NatsUnavailable, publish_cancel, publish_request
from services.gateway.resources import NATS_ERRORS, Resources
from shared.results.source_size import total_lines
from shared.store.paths import app_dir
from shared.telemetry.tracing import BATCH_ID_ATTRIBUTE, TASK_ID_ATTRIBUTE
from shared.wire.messages import BATCH_ID_PATTERN, AnalysisRequest, CancelRequest
from shared.wire.subjects import batch_key
from shared.wire.tasks import TaskRef

log = logging.getLogger(__name__)
tracer = trace.get_tracer("services.gateway")

BatchIdPath = Annotated[str, PathParameter(pattern=BATCH_ID_PATTERN, description="batch_ + 12 lowercase hex")]
PROGRESS_POLL_S = 1.0  # how often the event stream looks at the batch's tasks


class BatchLinks(msgspec.Struct, frozen=True, kw_only=True):
    self_: str = msgspec.field(name="self")
    events: str
    cancel: str


class BatchAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `POST /api/batches` (202)."""

    batch_id: str
    task_ids: list[str]
    tasks: list[BatchTask]
    missing: list[str]  # apps named by the request that are not under the apps root (nothing queued for them)
    links: BatchLinks


class BatchCancelling(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `POST /api/batches/{batch_id}/cancel` (202)."""

    batch_id: str
    cancelling: list[str]  # tasks asked to stop
    already_ended: int


async def _plan(resources: Resources, data: BatchRequest, ids: NewIds) -> tuple[list[BatchTask], list[str]]:
    problem = batch_problem(data)
    if problem:
        raise invalid(*problem)
    folders = await asyncio.to_thread(app_folders, resources.settings.apps_dir)
    unknown = unknown_models(data, folders)
    if unknown:
        known = sorted({folder.model_slug for folder in folders})
        # Like an analysis of an app that does not exist: 404, naming what is known.
        raise NotFoundException(
            f"models: no apps under the apps root for: {', '.join(unknown)}; known: {', '.join(known)}"
        )
    selection = select_apps(data, folders)
    tasks = [
        BatchTask(task_id=ids.task(index), model_slug=model, app_number=number, analysis_type=analysis_type)
        for index, (model, number, analysis_type) in enumerate(
            (model, number, analysis_type)
            for model, number in selection.apps
            for analysis_type in dict.fromkeys(data.analysis_types)
        )
    ]
    if not tasks:
        raise NotFoundException(
            f"apps: no app under the apps root matches (missing: {', '.join(selection.missing)})"
        )
    limit = resources.settings.batch_max_tasks
    if len(tasks) > limit:
        raise invalid(
            "models", f"the batch would queue {len(tasks)} tasks, more than {limit} (ASSAY_BATCH_MAX_TASKS)"
        )
    return tasks, selection.missing


ROUTE = "/api/batches"


@post(
    ROUTE,
    status_code=202,
    summary="Queue one analysis per chosen app and analysis type",
    description="202 with the batch id and its task ids, each queued as `POST /api/analysis/run` queues one. "
    "404 when a named model has no apps or no app matches; 422 names the field (unknown tool, too many tasks); "
    "503 when NATS cannot take the batch. With an `Idempotency-Key` header, a retry gets the first answer again "
    "(409 while that is still being handled; 422 when the key was used for another body).",
    tags=["batches"],
    **requires("submit", 404, 409, 413, 415, 422, 503),
)
async def create_batch(
    request: Request[Any, Any, Any],
    data: JSONBody[BatchRequest],
    resources: NamedDependency[Resources],
    idempotency_key: IdempotencyHeader = None,
) -> Response[BatchAccepted]:
    return await idempotent(
        request,
        resources,
        idempotency_key,
        ROUTE,
        data,
        lambda ids: _queue(data, resources, ids),
        BatchAccepted,
    )


async def _queue(data: BatchRequest, resources: Resources, ids: NewIds) -> Response[BatchAccepted]:
    """Plan the batch, record it, queue each of its tasks, answer 202."""
    tasks, missing = await _plan(resources, data, ids)
    sizes = await asyncio.to_thread(_sizes, resources.settings.apps_dir, tasks)
    batch_id = ids.batch()
    waived = list(dict.fromkeys(data.waived_rules))
    record = BatchRecord(batch_id=batch_id, tasks=tasks, waived_rules=waived)
    try:
        revision = await resources.tasks.put(batch_key(batch_id), msgspec.json.encode(record))
    except NATS_ERRORS as error:
        raise ServiceUnavailableException(f"NATS unavailable, batch not accepted: {error!r}") from error
    trace.get_current_span().set_attribute(BATCH_ID_ATTRIBUTE, batch_id)
    batch_link = trace.Link(trace.get_current_span().get_span_context(), {"assay.link.kind": "batch"})
    for queued, task in enumerate(tasks):
        request = AnalysisRequest(
            event_id=ids.request(queued),
            task=TaskRef(
                id=task.task_id,
                model_slug=task.model_slug,
                app_number=task.app_number,
                analysis_type=task.analysis_type,
            ),
            tools=list(dict.fromkeys(data.tools)),
            priority=data.priority,
            deadline_s=resources.settings.task_deadline_s,
            batch_id=batch_id,
            source_lines=sizes[(task.model_slug, task.app_number)],
            waived_rules=waived,
            options={"fresh": True} if data.fresh else {},
        )
        try:
            # Each task its own trace (a new root), linked to the batch's request, as a task queued alone has.
            with tracer.start_as_current_span(
                "queue batch task",
                context=otel_context.Context(),
                links=[batch_link],
                attributes={TASK_ID_ATTRIBUTE: task.task_id, BATCH_ID_ATTRIBUTE: batch_id},
            ):
                await publish_request(
                    resources.nats,
                    resources.js,
                    resources.tasks,
                    request,
                    patience_s=resources.publish_patience_s,
                )
        except NatsUnavailable as error:
            # The record keeps only what was queued, so the batch reports what really runs.
            kept = msgspec.structs.replace(record, tasks=tasks[:queued])
            await _keep_record(resources.tasks, kept, revision)
            raise ServiceUnavailableException(
                f"NATS unavailable after {queued} of {len(tasks)} tasks of {batch_id} were queued: {error}"
            ) from error
    log.info("batch %s queued %d tasks", batch_id, len(tasks))
    links = BatchLinks(
        self_=f"/api/batches/{batch_id}",
        events=f"/api/batches/{batch_id}/events",
        cancel=f"/api/batches/{batch_id}/cancel",
    )
    body = BatchAccepted(
        batch_id=batch_id,
        task_ids=[task.task_id for task in tasks],
        tasks=tasks,
        missing=missing,
        links=links,
    )
    return Response(body, status_code=202, headers={"Location": links.self_})


def _sizes(apps_root: Path, tasks: list[BatchTask]) -> dict[tuple[str, int], int]:
    """Source lines of each app of the batch, counted once however many analysis types it gets."""
    apps = {(task.model_slug, task.app_number) for task in tasks}
    return {(model, number): total_lines(app_dir(apps_root, model, number)) for model, number in apps}


async def _keep_record(tasks: KeyValue, record: BatchRecord, revision: int) -> None:
    """Shorten the batch's record to what was queued, unless written again since this request wrote it
    (`revision`): a retry that took its Idempotency-Key claim over may have queued the whole batch."""
    try:
        await tasks.update(batch_key(record.batch_id), msgspec.json.encode(record), last=revision)
    except KeyWrongLastSequenceError:
        log.info("kept the record of %s: written again since this request's failed publish", record.batch_id)
    except NATS_ERRORS as error:
        log.warning("could not shorten the record of %s: %r", record.batch_id, error)


async def find_batch(resources: Resources, batch_id: str) -> BatchRecord:
    """The batch from the tasks bucket, else rebuilt from the task rows; 404 when neither knows it."""
    try:
        entry = await resources.tasks.get(batch_key(batch_id))
        if entry.value:
            return msgspec.json.decode(entry.value, type=BatchRecord)
    except KeyNotFoundError:
        pass
    except NATS_ERRORS as error:
        log.warning("tasks bucket unreadable for %s: %r", batch_id, error)
    record = await recorded_batch(resources.sessions, batch_id)
    if record is None:
        raise NotFoundException(f"batch {batch_id} not found")
    return record


@get(
    "/api/batches/{batch_id:str}",
    summary="A batch's progress: tasks per status, per model, and each task",
    tags=["batches"],
    **requires("read", 404, 422, 503),
)
async def get_batch(resources: NamedDependency[Resources], batch_id: BatchIdPath) -> BatchProgress:
    return await batch_progress(resources.sessions, await find_batch(resources, batch_id))


async def progress_frames(
    resources: Resources, record: BatchRecord, poll_s: float = PROGRESS_POLL_S
) -> AsyncIterator[bytes]:
    """A `progress` frame each time the batch changes (numbered by `id:`), then `finished` once every task ended."""
    sent = b""
    number = 0
    quiet = 0.0
    while True:
        progress = await batch_progress(resources.sessions, record)
        data = msgspec.json.encode(progress)
        kind = "finished" if progress.finished else "progress"
        if data != sent:
            number += 1
            sent, quiet = data, 0.0
            yield f"id: {number}\nevent: {kind}\n".encode() + b"data: " + data + b"\n\n"
        elif quiet >= KEEPALIVE_S:
            quiet = 0.0
            yield b": keep-alive\n\n"
        if progress.finished:
            return
        await asyncio.sleep(poll_s)
        quiet += poll_s


@get(
    "/api/batches/{batch_id:str}/events",
    summary="Follow a batch (Server-Sent Events)",
    description="`event: progress` frames (the `GET /api/batches/{batch_id}` body) each time a task of the batch "
    "moves, numbered by `id:`; the stream ends with `event: finished` once every task has ended. Each frame is "
    "the whole state, so a client that reconnects needs nothing it missed.",
    tags=["batches"],
    **requires("read", 404, 422, 503),
    media_type="text/event-stream",
)
async def batch_event_stream(resources: NamedDependency[Resources], batch_id: BatchIdPath) -> Stream:
    record = await find_batch(resources, batch_id)
    return sse(progress_frames(resources, record))


@post(
    "/api/batches/{batch_id:str}/cancel",
    status_code=202,
    summary="Ask every unfinished task of the batch to stop",
    tags=["batches"],
    **requires("submit", 404, 409, 422, 503),
)
async def cancel_batch(
    resources: NamedDependency[Resources], batch_id: BatchIdPath
) -> Response[BatchCancelling]:
    progress = await batch_progress(resources.sessions, await find_batch(resources, batch_id))
    running = [task.task_id for task in progress.tasks if task.status in ("pending", "running")]
    if not running:
        raise ClientException(status_code=409, detail=f"batch {batch_id} has already ended")
    for task_id in running:
        try:
            await publish_cancel(resources.nats, resources.tasks, CancelRequest(task_id=task_id))
        except NatsUnavailable as error:
            raise ServiceUnavailableException(
                f"NATS unavailable, cancel of {task_id} not sent: {error}"
            ) from error
    body = BatchCancelling(batch_id=batch_id, cancelling=running, already_ended=progress.total - len(running))
    return Response(body, status_code=202)
