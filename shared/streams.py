"""Declaring Assay's streams, consumers and buckets: idempotent, run by every service at start.

Declaring looks first and writes only what is missing or out of date. On the embedded server the supervisor
declares everything as `admin` before any service starts (`declare_all`), so the services, whose NATS users may
only look streams and consumers up (shared/nats_users.py), find them in place and never need to write.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any

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
    StreamConfig(
        # The messages an advisory names stay in their streams (limits retention, kept a week), so the persister
        # reads each one back by its sequence and dead-letters it.
        name=subjects.ADVISORIES_STREAM,
        subjects=[
            subjects.max_deliveries_advisories(subjects.REQUESTS_STREAM),
            subjects.max_deliveries_advisories(subjects.EVENTS_STREAM),
        ],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=7 * DAY_S,
        duplicate_window=DUPLICATE_WINDOW_S,  # the server's default, said so that declaring finds it in place
    ),
)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def covers(wanted: StreamConfig | ConsumerConfig, current: StreamConfig | ConsumerConfig | None) -> bool:
    """Whether the server's configuration already has every value `wanted` sets (unset false-ish values match)."""
    have = {key: _plain(value) for key, value in (current.as_dict() if current else {}).items()}
    return all(
        have.get(key, _plain(value) if not value else None) == _plain(value)
        for key, value in wanted.as_dict().items()
    )


async def declare_streams(js: JetStreamContext) -> None:
    """Create the streams that are missing; bring one whose configuration is out of date (an older release) up
    to date."""
    for config in STREAMS:
        assert config.name
        try:
            info = await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
            continue
        if not covers(config, info.config):
            await js.update_stream(config)


def consumer_config(
    durable: str, filter_subject: str | None, ack_wait_s: float, max_deliver: int
) -> ConsumerConfig:
    """A durable pull consumer with explicit acks from the stream's start (`filter_subject` None: all of it)."""
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
        info = await js.consumer_info(stream, config.durable_name)
    except NotFoundError:
        await js.add_consumer(stream, config)
        return
    if covers(config, info.config):
        return
    try:
        await js.add_consumer(stream, config)  # same name: the server updates editable fields
    except (BadRequestError, TimeoutError) as error:
        # TimeoutError: a user without the right to change consumers (the embedded server's services).
        log.warning("consumer %s kept its old settings: %r", config.durable_name, error)


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


def persister_consumers(ack_wait_s: float, max_deliver: int) -> list[tuple[str, ConsumerConfig]]:
    """The persister's durables, (stream, config): every request, every event, every max-deliveries advisory."""
    return [
        (
            subjects.REQUESTS_STREAM,
            consumer_config(
                subjects.PERSISTER_REQUESTS_DURABLE, subjects.REQUESTS_ALL, ack_wait_s, max_deliver
            ),
        ),
        (
            subjects.EVENTS_STREAM,
            consumer_config(subjects.PERSISTER_EVENTS_DURABLE, subjects.EVENTS_ALL, ack_wait_s, max_deliver),
        ),
        (
            subjects.ADVISORIES_STREAM,
            consumer_config(subjects.PERSISTER_ADVISORIES_DURABLE, None, ack_wait_s, max_deliver),
        ),
    ]


async def declare_all(js: JetStreamContext, ack_wait_s: float, max_deliver: int) -> None:
    """Every stream, bucket and durable consumer Assay uses (what the supervisor does as `admin` at start)."""
    await declare_streams(js)
    await tasks_bucket(js)
    await artifacts_bucket(js)
    consumers = [(subjects.REQUESTS_STREAM, c) for c in orchestrator_consumers(ack_wait_s, max_deliver)]
    for stream, config in consumers + persister_consumers(ack_wait_s, max_deliver):
        await declare_consumer(js, stream, config)


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
