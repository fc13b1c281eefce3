"""Messages that reached their delivery limit unsettled, however they got there: each JetStream max-deliveries
advisory (shared/jetstream/advisories.py) becomes a dead letter on ASSAY_DLQ with the reason and the delivery count, and the
task of the message it names is failed with that reason.

A consumer that crashes, hangs or is stopped on a message each time never sees its last delivery, so no handler
can give it up; the server can, and says so. The advisories are kept in ASSAY_ADVISORIES and read by one durable
that every persister replica shares, so each is handled once; should one be handled twice, its dead letter, whose
id is the advisory's (`Nats-Msg-Id`), is stored once, and failing a task that has ended changes nothing.
"""

from __future__ import annotations

import logging

import msgspec
from nats.js.errors import NotFoundError

from services.persister import database
from services.persister.completion import PersisterContext, fail_task
from shared.jetstream.advisories import MaxDeliveries
from shared.jetstream.publishing import publish_message
from shared.wire import subjects
from shared.wire.messages import AnalysisRequest, DeadLetter, TaskEvent, decode_event, decode_request
from shared.wire.tasks import task_id_hint

log = logging.getLogger(__name__)


def exhausted_reason(advisory: MaxDeliveries) -> str:
    """Why the message was given up: who had it, how often, and what that means."""
    return (
        f"delivery limit reached: {advisory.consumer} was given it {advisory.deliveries} times and never settled "
        "it (the consumer stopped, crashed or hung on it each time)"
    )


def _decoded(stream: str, data: bytes) -> AnalysisRequest | TaskEvent | None:
    """The request or event the stored message holds, when it is a valid one."""
    try:
        if stream == subjects.REQUESTS_STREAM:
            return decode_request(data)
        if stream == subjects.EVENTS_STREAM:
            return decode_event(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return None


async def handle_exhausted(ctx: PersisterContext, advisory: MaxDeliveries) -> DeadLetter:
    """Dead-letter the message `advisory` names and fail its task; the letter published."""
    reason = exhausted_reason(advisory)
    try:
        stored = await ctx.js.get_msg(advisory.stream, advisory.stream_seq)
        data, subject = stored.data or b"", stored.subject or ""
    except NotFoundError:  # aged out or removed since: the letter says so, and names no task
        data, subject = b"", ""
        reason = f"{reason}; message {advisory.stream_seq} is no longer in {advisory.stream}"
    message = _decoded(advisory.stream, data)
    task_id = message.task.id if message is not None else task_id_hint(data, subject)
    letter = DeadLetter(
        event_id=advisory.id,
        task_id=task_id,
        stream=advisory.stream,
        subject=subject,
        consumer=advisory.consumer,
        deliveries=advisory.deliveries,
        reason=reason,
        payload=data.decode("utf-8", errors="replace"),
    )
    await publish_message(ctx.js, subjects.dlq_subject(advisory.stream, advisory.consumer), letter, task_id)
    log.error(
        "message %d of %s sent to the DLQ: %s",
        advisory.stream_seq,
        advisory.stream,
        reason,
        extra={"task_id": task_id},
    )
    if isinstance(message, AnalysisRequest):
        await database.record_request(ctx.sessions, message, None)  # a no-op once the request is recorded
        await fail_task(ctx, message.task.id, reason)
    elif message is not None:
        await fail_task(ctx, message.task.id, reason, message)
    return letter
