"""Publishing on JetStream the one way every service does: a PRODUCER span with the messaging attributes,
`Nats-Msg-Id` = the message's event id (a publish repeated after a lost ack is stored once), a `traceparent`
header, and retries for a while before giving up.

Why retries, and for how long (`publish_patience`): on a cluster, a stream whose leader was on a node that died has
none until the others elect one (seconds; meanwhile a publish gets "no responders" or no answer), and a client whose
node died reconnects to another. Retrying with the same `Nats-Msg-Id` for up to CLUSTER_PUBLISH_PATIENCE_S rides
that out, and JetStream's de-duplication keeps the message once even when an earlier attempt was stored and only its
ack was lost. On one server there is no election to wait for ("no responders" means the stream is missing), so a
publish is retried only briefly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import APIError, ServiceUnavailableError
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from shared.operations.config import JetStreamLayout
from shared.operations.errors import MessagingError
from shared.telemetry.tracing import TASK_ID_ATTRIBUTE, inject_headers
from shared.wire.messages import DeadLetter, Envelope, encode
from shared.wire.subjects import dlq_subject

log = logging.getLogger(__name__)
tracer = trace.get_tracer("assay.publishing")

PUBLISH_TIMEOUT_S = 5.0  # one attempt
PUBLISH_PATIENCE_S = 3.0  # all attempts, on one server
CLUSTER_PUBLISH_PATIENCE_S = 20.0  # all attempts, on replicated streams: well beyond a leader election
MAX_PAUSE_S = 2.0
# JetStream's code for "could not store": the stream is full (its max bytes or messages, discard policy `new`) or
# its disk failed. It comes as a 503 like a passing outage, but no retry within the patience will fix it.
STORE_FAILED = 10077

T = TypeVar("T")


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


def publish_patience(layout: JetStreamLayout) -> float:
    """How long a publish is retried: through a leader election when streams are replicated, briefly otherwise."""
    return CLUSTER_PUBLISH_PATIENCE_S if layout.replicas > 1 else PUBLISH_PATIENCE_S


async def with_patience(operation: Callable[[], Awaitable[T]], what: str, patience_s: float) -> T:
    """Run a JetStream write until it is confirmed, pausing 0.25, 0.5, 1, 2, 2 … s between attempts, for up to
    `patience_s` (0: one attempt); PublishFailed after that, or at once when JetStream refuses it for good (a full
    stream, a bad request: an API error other than a passing 503). `operation` must be safe to repeat."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except (NatsError, TimeoutError) as error:
            log.warning("%s failed (attempt %d): %r", what, attempt, error)
            pause = min(MAX_PAUSE_S, 0.25 * 2 ** (attempt - 1))
            refused = isinstance(error, APIError) and (
                not isinstance(error, ServiceUnavailableError) or error.err_code == STORE_FAILED
            )
            if refused or loop.time() + pause >= deadline:
                said = str(error) or repr(error)  # nats-py's errors say what the server answered
                trace.get_current_span().set_status(trace.Status(trace.StatusCode.ERROR, said))
                raise PublishFailed(f"could not {what}: {said}") from error
            await asyncio.sleep(pause)


async def publish_confirmed(
    js: JetStreamContext,
    subject: str,
    data: bytes,
    message_id: str,
    patience_s: float = PUBLISH_PATIENCE_S,
) -> PubAck:
    """Publish until JetStream confirms it, with the current span's traceparent, always under the same
    `Nats-Msg-Id`; PublishFailed after `patience_s`."""
    headers = inject_headers({"Nats-Msg-Id": message_id})
    return await with_patience(
        lambda: js.publish(subject, data, timeout=PUBLISH_TIMEOUT_S, headers=headers),
        f"publish on {subject}",
        patience_s,
    )


async def publish_message(
    js: JetStreamContext,
    subject: str,
    message: Envelope,
    task_id: str | None,
    patience_s: float = PUBLISH_PATIENCE_S,
    data: bytes | None = None,
) -> PubAck:
    """Publish an Assay message about `task_id` inside a PRODUCER span `publish <subject>` (`data`: the message
    already encoded, for a caller that had to encode it anyway)."""
    attributes = producer_attributes(subject, message.event_id, task_id)
    with tracer.start_as_current_span(
        f"publish {subject}", kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        body = encode(message) if data is None else data
        ack = await publish_confirmed(js, subject, body, message.event_id, patience_s)
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
