"""Messages given up on: published to ASSAY_DLQ with where they came from and why, for an operator to look at."""

from __future__ import annotations

import re

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from shared.messages import TASK_ID_PATTERN, DeadLetter, encode
from shared.subjects import dlq_subject
from shared.tracing import TASK_ID_ATTRIBUTE, inject_headers

tracer = trace.get_tracer("services.persister")
_TASK_ID_IN_TEXT = re.compile(TASK_ID_PATTERN.strip("^$"))


class _HasTaskId(msgspec.Struct):
    task_id: str | None = None


def task_id_hint(msg: Msg) -> str | None:
    """The task a message concerns, read from its subject or, failing that, from whatever JSON it holds."""
    for part in msg.subject.split("."):
        if _TASK_ID_IN_TEXT.fullmatch(part):
            return part
    try:
        found = msgspec.json.decode(msg.data, type=_HasTaskId).task_id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return found if found and _TASK_ID_IN_TEXT.fullmatch(found) else None


async def publish_dead_letter(
    js: JetStreamContext, msg: Msg, stream: str, consumer: str, reason: str, task_id: str | None
) -> DeadLetter:
    """Publish the message with `reason` to the consumer's DLQ subject (raises when JetStream does not take it)."""
    letter = DeadLetter(
        task_id=task_id,
        stream=stream,
        subject=msg.subject,
        consumer=consumer,
        deliveries=msg.metadata.num_delivered,
        reason=reason,
        payload=msg.data.decode("utf-8", errors="replace"),
    )
    subject = dlq_subject(stream, consumer)
    attributes = {"messaging.system": "nats", "messaging.destination.name": subject}
    if task_id:
        attributes[TASK_ID_ATTRIBUTE] = task_id
    with tracer.start_as_current_span(f"publish {subject}", kind=SpanKind.PRODUCER, attributes=attributes):
        headers = inject_headers({"Nats-Msg-Id": letter.event_id})
        await js.publish(subject, encode(letter), headers=headers)
    return letter
