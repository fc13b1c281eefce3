"""Declaring Assay's streams, consumers and buckets: idempotent, run by every service at start."""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from shared import subjects
from shared.messages import PRIORITIES

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 120.0
DAY_S = 24 * 3600.0

STREAMS = (
    StreamConfig(
        name=subjects.REQUESTS_STREAM,
        subjects=[subjects.REQUESTS_ALL],
        # Limits retention, not work-queue: both the orchestrators and the persister read every request.
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=7 * DAY_S,
        duplicate_window=DUPLICATE_WINDOW_S,
    ),
    StreamConfig(
        name=subjects.EVENTS_STREAM,
        subjects=[subjects.EVENTS_ALL],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=7 * DAY_S,
        duplicate_window=DUPLICATE_WINDOW_S,
        allow_direct=True,
    ),
    StreamConfig(
        name=subjects.DLQ_STREAM,
        subjects=[subjects.DLQ_ALL],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=30 * DAY_S,
        duplicate_window=DUPLICATE_WINDOW_S,
    ),
)


async def declare_streams(js: JetStreamContext) -> None:
    """Create the streams, or bring an existing one's configuration up to date."""
    for config in STREAMS:
        try:
            await js.add_stream(config)
        except BadRequestError:
            # Exists with another configuration (an older release): update it in place.
            await js.update_stream(config)


def consumer_config(durable: str, filter_subject: str, ack_wait_s: float, max_deliver: int) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=durable,
        filter_subject=filter_subject,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait_s,
        max_deliver=max_deliver,
        max_ack_pending=1000,
    )


async def declare_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    """Create a durable consumer; when it exists, leave its position alone but update its settings."""
    if not config.durable_name:
        raise ValueError("a durable consumer needs a durable_name")
    try:
        await js.consumer_info(stream, config.durable_name)
    except NotFoundError:
        await js.add_consumer(stream, config)
        return
    try:
        await js.add_consumer(stream, config)  # same name: the server updates editable fields
    except BadRequestError as error:
        log.warning("consumer %s kept its old settings: %s", config.durable_name, error)


def orchestrator_consumers(ack_wait_s: float, max_deliver: int) -> list[ConsumerConfig]:
    """One durable per priority, so that replicas can drain urgent requests first."""
    return [
        consumer_config(
            subjects.orchestrator_durable(priority),
            subjects.request_subject(priority),
            ack_wait_s,
            max_deliver,
        )
        for priority in PRIORITIES
    ]


async def tasks_bucket(js: JetStreamContext) -> KeyValue:
    """Key-value bucket for accepted-task placeholders and cancel markers (kept a day)."""
    try:
        return await js.key_value(subjects.TASKS_BUCKET)
    except NotFoundError:
        return await js.create_key_value(
            KeyValueConfig(bucket=subjects.TASKS_BUCKET, ttl=DAY_S, storage=StorageType.FILE)
        )


async def artifacts_bucket(js: JetStreamContext) -> ObjectStore:
    """Object store for payloads larger than a message may be (kept a week)."""
    try:
        return await js.object_store(subjects.ARTIFACTS_BUCKET)
    except NotFoundError:
        return await js.create_object_store(
            subjects.ARTIFACTS_BUCKET, ObjectStoreConfig(ttl=7 * DAY_S, storage=StorageType.FILE)
        )
