"""Everything the orchestrator publishes on JetStream: task events (via shared/jetstream/publishing.py).

Each message goes out with `Nats-Msg-Id` = its event id, so a publish repeated after a lost ack is stored once, and
with a `traceparent` header. The task's `started`, `service` and terminal events are published in PRODUCER spans
(`publish <subject>`); progress events only carry the current span's traceparent, because a span per progress
tick would bury the trace. A service result too large for a message goes to the object store, and its event
carries an ArtifactRef instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

import msgspec
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.object_store import ObjectStore
from opentelemetry import trace

from shared.jetstream.cancel_safety import raise_swallowed_cancel
from shared.jetstream.publishing import publish_message, publish_patience, with_patience
from shared.jetstream.streams import DEFAULT_LAYOUT, artifacts_bucket
from shared.operations.config import JetStreamLayout
from shared.operations.redact import redacted_bytes
from shared.telemetry.tracing import TASK_ID_ATTRIBUTE, inject_headers
from shared.wire.messages import (
    ArtifactRef,
    Event,
    ServiceFinished,
    TaskProgress,
    encode,
    event_kind,
)
from shared.wire.protocol import ServiceResult
from shared.wire.subjects import ARTIFACTS_BUCKET, event_subject

log = logging.getLogger(__name__)
tracer = trace.get_tracer("services.orchestrator")

PROGRESS_TIMEOUT_S = 2.0  # progress is a hint: never hold a run up for long over one


# A result with at most this many findings and bytes of raw output encodes in well under a millisecond.
SMALL_RESULT_FINDINGS = 500
SMALL_RESULT_RAW_BYTES = 256 * 1024


def _small(result: ServiceResult) -> bool:
    """Whether encoding `result` is quick enough for the event loop (its SARIF grows with its findings)."""
    raw = sum(len(output) for output in result.raw_outputs.values())
    return len(result.findings) <= SMALL_RESULT_FINDINGS and raw <= SMALL_RESULT_RAW_BYTES


def stored(message: msgspec.Struct) -> bytes:
    """An event (or a result) as it is published and so kept: JSON with every URL's password or token masked
    (shared/operations/redact.py); the persister writes the database and the result files from these."""
    return redacted_bytes(encode(message))


class EventPublisher:
    """Publishes on one connection; the artifacts bucket is looked up on first use."""

    def __init__(self, nc: Client, js: JetStreamContext, layout: JetStreamLayout = DEFAULT_LAYOUT) -> None:
        self.nc = nc
        self.js = js
        # How long writes are retried (through a leader election on a cluster); the artifacts bucket's replicas and
        # limits, should it have to be created.
        self.layout = layout
        self._artifacts: ObjectStore | None = None

    async def publish(self, event: Event) -> None:
        """Publish a task event in a PRODUCER span, retrying until JetStream confirms it (or PublishFailed): through
        a leader election on a cluster, so that a node's death does not make the task run again."""
        await self._publish(event, stored(event))

    async def _publish(self, event: Event, data: bytes) -> None:
        subject = event_subject(event.task.id, event_kind(event))
        await publish_message(self.js, subject, event, event.task.id, publish_patience(self.layout), data)
        # DEBUG: the task's start and end are its INFO lines; one more per event costs a few per cent of the CPU.
        log.debug("published %s", subject, extra={"task_id": event.task.id})

    async def publish_progress(self, event: TaskProgress) -> None:
        """Publish a progress event once, briefly; a lost one is logged and forgotten."""
        subject = event_subject(event.task.id, "progress")
        headers = inject_headers({"Nats-Msg-Id": event.event_id})
        try:
            await self.js.publish(subject, stored(event), timeout=PROGRESS_TIMEOUT_S, headers=headers)
        except (NatsError, TimeoutError) as error:
            log.warning("progress event not published: %r", error, extra={"task_id": event.task.id})
        # Runs stop at once when cancelled, even if the cancel came as the publish completed.
        raise_swallowed_cancel()

    async def service_finished(self, event: ServiceFinished) -> None:
        """Publish a service event, moving its result to the object store (`artifact` instead of `result`) when the
        event would be too large."""
        if event.result is None or _small(event.result):
            await self._publish(event, stored(event))  # on the loop: cheaper than a thread hand-off
            return
        # Results can be hundreds of MB: encoded (once) and hashed off the event loop.
        data = await asyncio.to_thread(stored, event)
        if len(data) > self.nc.max_payload // 2:
            result = await asyncio.to_thread(stored, event.result)
            artifact = await self.store_result(event.task.id, event.result.service, result)
            event = msgspec.structs.replace(event, result=None, artifact=artifact)
            data = stored(event)
        await self._publish(event, data)

    async def store_result(self, task_id: str, service: str, data: bytes) -> ArtifactRef:
        """Put a service result's JSON into the artifacts bucket as `<task_id>/<service>.json`."""
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        name = f"{task_id}/{service}.json"
        with tracer.start_as_current_span(
            f"store {ARTIFACTS_BUCKET}",
            attributes={TASK_ID_ATTRIBUTE: task_id, "assay.artifact.size": len(data)},
        ):
            if self._artifacts is None:
                self._artifacts = await artifacts_bucket(self.js, self.layout)
            store = self._artifacts
            # A put repeated replaces the object (its earlier chunks are purged): safe to retry.
            await with_patience(lambda: store.put(name, data), f"store {name}", publish_patience(self.layout))
        log.info(
            "result of %s (%d bytes) stored as %s",
            service,
            len(data),
            name,
            extra={"task_id": task_id},
        )
        return ArtifactRef(bucket=ARTIFACTS_BUCKET, name=name, size=len(data), sha256=digest)
