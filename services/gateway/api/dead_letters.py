"""Dead letter routes (admin scope): list ASSAY_DLQ, show one letter with its message, replay a dead request.

A dead letter's id is its sequence in ASSAY_DLQ. Replaying queues the dead request again as a new task (a new id,
the same app, analysis type, tools, options and priority): the old task has ended `failed` with the reason, and
its id cannot run twice. Only requests are replayed; an event belongs to the run that published it.
"""

from __future__ import annotations

import logging
from typing import Annotated

import msgspec
from litestar import Response, Router, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException, ServiceUnavailableException
from litestar.params import PathParameter, QueryParameter
from nats.js.errors import NotFoundError

from services.gateway.api.tasks.analysis import queue
from services.gateway.auth import requires
from services.gateway.resources import NATS_ERRORS, Resources
from services.gateway.schemas import DeadLetterDetail, DeadLetterHeading, DeadLetterPage, Replayed
from shared.wire import subjects
from shared.wire.messages import (
    AnalysisRequest,
    DeadLetter,
    decode_dead_letter,
    decode_request,
    new_event_id,
    utcnow,
)
from shared.wire.tasks import new_task_id

log = logging.getLogger(__name__)

# Larger ids are refused (422) before they reach NATS: JSON numbers are exact up to 2**53, and no stream's
# sequence gets near it.
MAX_SEQUENCE = 2**53
LetterId = Annotated[
    int, PathParameter(ge=1, le=MAX_SEQUENCE, description="The dead letter's sequence in ASSAY_DLQ")
]


def _unavailable(error: BaseException) -> ServiceUnavailableException:
    return ServiceUnavailableException(f"NATS unavailable, ASSAY_DLQ not read: {error!r}")


async def _letter_at(resources: Resources, seq: int, *, following: bool) -> tuple[int, DeadLetter] | None:
    """The dead letter stored at `seq` (with `following`: the first at or after it); None when there is none."""
    try:
        stored = await resources.js.get_msg(
            subjects.DLQ_STREAM, seq, subject=subjects.DLQ_ALL if following else None, next=following
        )
    except NotFoundError:
        return None
    except NATS_ERRORS as error:
        raise _unavailable(error) from error
    assert stored.seq is not None
    try:
        return stored.seq, decode_dead_letter(stored.data or b"")
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        # Only Assay's services publish there (their NATS users say so): not a letter means a broken store.
        raise ServiceUnavailableException(
            f"ASSAY_DLQ message {stored.seq} is not a dead letter: {error}"
        ) from error


def _heading(seq: int, letter: DeadLetter) -> DeadLetterHeading:
    return DeadLetterHeading(
        id=seq,
        occurred_at=letter.occurred_at,
        task_id=letter.task_id,
        stream=letter.stream,
        consumer=letter.consumer,
        subject=letter.subject,
        deliveries=letter.deliveries,
        reason=letter.reason,
    )


@get(
    "/api/dlq",
    summary="List dead letters, oldest first",
    description="Messages given up on (ASSAY_DLQ): where each came from, its delivery count and the reason. "
    "Continue a long list with `after` = the answer's `next_after`.",
    tags=["dead letters"],
    **requires("admin", 422, 503),
)
async def list_dead_letters(
    resources: NamedDependency[Resources],
    after: Annotated[int, QueryParameter(ge=0, le=MAX_SEQUENCE)] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
) -> DeadLetterPage:
    letters: list[DeadLetterHeading] = []
    seq = after + 1
    while len(letters) < limit:
        found = await _letter_at(resources, seq, following=True)
        if found is None:
            return DeadLetterPage(dead_letters=letters, next_after=None)
        seq, letter = found
        letters.append(_heading(seq, letter))
        seq += 1
    more = await _letter_at(resources, seq, following=True)
    return DeadLetterPage(dead_letters=letters, next_after=letters[-1].id if more else None)


async def _letter(resources: Resources, letter_id: int) -> DeadLetter:
    found = await _letter_at(resources, letter_id, following=False)
    if found is None:
        raise NotFoundException(f"no dead letter {letter_id} in ASSAY_DLQ")
    return found[1]


@get(
    "/api/dlq/{letter_id:int}",
    summary="One dead letter with the message it holds",
    tags=["dead letters"],
    **requires("admin", 404, 422, 503),
)
async def get_dead_letter(resources: NamedDependency[Resources], letter_id: LetterId) -> DeadLetterDetail:
    letter = await _letter(resources, letter_id)
    heading = msgspec.structs.asdict(_heading(letter_id, letter))
    return DeadLetterDetail(**heading, payload=letter.payload)


@post(
    "/api/dlq/{letter_id:int}/replay",
    status_code=202,
    summary="Queue a dead request again, as a new task",
    description="409 when the letter holds no valid request (an event, or a request no retry can fix).",
    tags=["dead letters"],
    **requires("admin", 404, 409, 413, 422, 503),
)
async def replay_dead_letter(
    resources: NamedDependency[Resources], letter_id: LetterId
) -> Response[Replayed]:
    letter = await _letter(resources, letter_id)
    if letter.stream != subjects.REQUESTS_STREAM:
        raise ClientException(
            status_code=409,
            detail=f"dead letter {letter_id} holds a message of {letter.stream}: only requests are replayed "
            "(an event belongs to the run that published it)",
        )
    try:
        dead = decode_request(letter.payload.encode())
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise ClientException(
            status_code=409,
            detail=f"dead letter {letter_id} holds no valid request, nothing to replay: {error}",
        ) from error
    task = msgspec.structs.replace(dead.task, id=new_task_id())
    request: AnalysisRequest = msgspec.structs.replace(
        dead, task=task, event_id=new_event_id(), occurred_at=utcnow()
    )
    accepted = await queue(resources, request)
    log.info("dead letter %d replayed as %s", letter_id, task.id, extra={"task_id": task.id})
    body = Replayed(
        **msgspec.structs.asdict(accepted), replayed_from=letter_id, original_task_id=dead.task.id
    )
    return Response(body, status_code=202, headers={"Location": accepted.links.self_})


router = Router("/", route_handlers=[list_dead_letters, get_dead_letter, replay_dead_letter])
