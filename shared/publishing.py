"""Publishing on JetStream the one way every service does: a PRODUCER span with the messaging attributes,
`Nats-Msg-Id` = the message's event id (a publish repeated after a lost ack is stored once), a `traceparent`
header, and a few attempts before giving up."""

from __future__ import annotations

import asyncio
import logging

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import PubAck
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from shared.errors import MessagingError
from shared.messages import DeadLetter, Envelope, encode
from shared.subjects import dlq_subject
from shared.tracing import TASK_ID_ATTRIBUTE, inject_headers

log = logging.getLogger(__name__)
tracer = trace.get_tracer("assay.publishing")

PUBLISH_TIMEOUT_S = 5.0
PUBLISH_ATTEMPTS = 3


class PublishFailed(MessagingError):
    """JetStream did not confirm a message after every attempt."""


def producer_attributes(subject: str, message_id: str, task_id: str | None) -> dict[str, str]:
    """OpenTelemetry messaging attributes of a `publish <subject>` span."""
    attributes = {
        "messaging.system": "nats",
        "messaging.operation.type": "send",
        "messaging.destination.name": subject,
        "messaging.message.id": message_id,
    }
    if task_id:
        attributes[TASK_ID_ATTRIBUTE] = task_id
    return attributes


async def publish_confirmed(
    js: JetStreamContext, subject: str, data: bytes, message_id: str, attempts: int = PUBLISH_ATTEMPTS
) -> PubAck:
    """Publish until JetStream confirms it, with the current span's traceparent; PublishFailed after `attempts`."""
    headers = inject_headers({"Nats-Msg-Id": message_id})
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            return await js.publish(subject, data, timeout=PUBLISH_TIMEOUT_S, headers=headers)
        except (NatsError, TimeoutError) as error:
            last = error
            log.warning("publish on %s failed (attempt %d): %r", subject, attempt + 1, error)
            if attempt + 1 < attempts:
                await asyncio.sleep(0.25 * 2**attempt)
    trace.get_current_span().set_status(trace.Status(trace.StatusCode.ERROR, repr(last)))
    raise PublishFailed(f"could not publish on {subject}: {last!r}") from last


async def publish_message(
    js: JetStreamContext,
    subject: str,
    message: Envelope,
    task_id: str | None,
    attempts: int = PUBLISH_ATTEMPTS,
) -> PubAck:
    """Publish an Assay message about `task_id` inside a PRODUCER span `publish <subject>`."""
    attributes = producer_attributes(subject, message.event_id, task_id)
    with tracer.start_as_current_span(
        f"publish {subject}", kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        ack = await publish_confirmed(js, subject, encode(message), message.event_id, attempts)
        span.set_attribute("messaging.nats.stream.sequence", ack.seq)
        return ack


async def publish_dead_letter(
    js: JetStreamContext, msg: Msg, stream: str, consumer: str, reason: str, task_id: str | None
) -> DeadLetter:
    """Send a message given up on to ASSAY_DLQ, with where it came from and why (raises PublishFailed)."""
    letter = DeadLetter(
        task_id=task_id,
        stream=stream,
        subject=msg.subject,
        consumer=consumer,
        deliveries=msg.metadata.num_delivered,
        reason=reason,
        payload=(msg.data or b"").decode("utf-8", errors="replace"),
    )
    await publish_message(js, dlq_subject(stream, consumer), letter, task_id)
    return letter
