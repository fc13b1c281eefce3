"""The gateway's producing side: accepted analysis requests onto JetStream, cancel requests onto core NATS.

Each publish is a PRODUCER span `publish <subject>` whose context travels in the message's `traceparent` header,
so the orchestrator's and persister's spans join the trace of the HTTP request.

On a cluster, one node may die under the gateway: its connection moves to another node within a second, and the
streams that node led elect a new leader within seconds. A request waits that out (up to RECONNECT_GRACE_S to be
connected, then for each write the publish patience of shared/jetstream/publishing.py, each publish repeated under its one
`Nats-Msg-Id`, so JetStream stores it once) instead of answering 503 for a task that would then be submitted twice.
"""

from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import APIError
from nats.js.kv import KeyValue
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from services.gateway.resources import NATS_ERRORS
from shared.jetstream.publishing import PublishFailed, producer_attributes, publish_message, with_patience
from shared.operations.errors import MessagingError
from shared.telemetry.tracing import inject_headers
from shared.wire.messages import AnalysisRequest, CancelRequest, encode
from shared.wire.subjects import accepted_key, cancel_key, cancel_subject, request_subject

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5
RECONNECT_GRACE_S = 5.0  # a client whose node died is on another one well within this
# JetStream's codes for a write whose expected last revision is not the last: nats-py's KeyValue.update() turns
# them into KeyWrongLastSequenceError, its delete() does not.
WRONG_LAST_SEQUENCE = (10071, 10164)


class NatsUnavailable(MessagingError):
    """NATS could not take the message; nothing of it was left behind."""


async def connected(nc: Client) -> None:
    """Return once `nc` is connected, waiting up to RECONNECT_GRACE_S while it reconnects (NatsUnavailable)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECONNECT_GRACE_S
    while not nc.is_connected:
        if nc.is_closed or loop.time() > deadline:
            raise NatsUnavailable("not connected to NATS (reconnecting)")
        await asyncio.sleep(0.05)


async def publish_request(
    nc: Client, js: JetStreamContext, tasks: KeyValue, request: AnalysisRequest, *, patience_s: float
) -> None:
    """Record `accepted.<task_id>` in the tasks bucket, then publish the request on `assay.requests.<priority>`.

    The bucket entry comes first so that a GET right after the 202 finds the task even before the persister has
    seen the request. If the publish fails the entry is removed again, so a refused request leaves no trace.
    """
    await connected(nc)
    payload = encode(request)
    key = accepted_key(request.task.id)
    try:
        # Repeating a put only writes the same value again.
        revision = await with_patience(lambda: tasks.put(key, payload), "record the task", patience_s)
    except PublishFailed as error:
        raise NatsUnavailable(f"tasks bucket: {error}") from error
    except NATS_ERRORS as error:
        raise NatsUnavailable(f"could not record the task in the tasks bucket: {error!r}") from error
    subject = request_subject(request.priority)
    try:
        ack = await publish_message(js, subject, request, request.task.id, patience_s)
    except PublishFailed as error:
        await _forget(tasks, key, revision)
        raise NatsUnavailable(str(error)) from error
    log.info(
        "accepted %s on %s (stream seq %d)",
        request.task.id,
        subject,
        ack.seq,
        extra={"task_id": request.task.id},
    )


async def _forget(tasks: KeyValue, key: str, revision: int) -> None:
    """Remove the entry this request wrote (`revision`), unless written again since: under an Idempotency-Key,
    another attempt at the same task (a retry that took the claim over) may have recorded and queued it."""
    try:
        await tasks.delete(key, last=revision)
    except NATS_ERRORS as error:
        if isinstance(error, APIError) and error.err_code in WRONG_LAST_SEQUENCE:
            log.info("kept %s: written again since this request's failed publish", key)
            return
        # The entry expires with the bucket's TTL; a GET meanwhile answers `pending` for a task never queued.
        log.warning("could not remove %s after a failed publish: %r", key, error)


async def publish_cancel(nc: Client, tasks: KeyValue, cancel: CancelRequest) -> None:
    """Put the `cancel.<task_id>` marker (for runs not started yet), then tell whoever runs the task, now."""
    await connected(nc)
    subject = cancel_subject(cancel.task_id)
    payload = encode(cancel)
    try:
        await tasks.put(cancel_key(cancel.task_id), payload)
    except NATS_ERRORS as error:
        raise NatsUnavailable(f"could not record the cancel marker: {error!r}") from error
    tracer = trace.get_tracer(__name__)
    attributes = producer_attributes(subject, cancel.event_id, cancel.task_id)
    with tracer.start_as_current_span(f"publish {subject}", kind=SpanKind.PRODUCER, attributes=attributes):
        try:
            await nc.publish(subject, payload, headers=inject_headers({"Nats-Msg-Id": cancel.event_id}))
            # Core NATS does not confirm; a flush at least proves the server has it.
            await nc.flush(timeout=PUBLISH_TIMEOUT_S)
        except NATS_ERRORS as error:
            # The marker stays: the orchestrator also checks it, so the cancel is not lost.
            raise NatsUnavailable(f"could not publish on {subject}: {error!r}") from error
    log.info("cancel requested for %s", cancel.task_id, extra={"task_id": cancel.task_id})
