"""Declaring Assay's streams, consumers and buckets: idempotent, run by every service at start.

Declaring looks first and writes only what is missing or out of date. On the embedded server the supervisor
declares everything as `admin` before any service starts (`declare_all`), so the services, whose NATS users may
only look streams and consumers up (shared/jetstream/nats_users.py), find them in place and never need to write.

Replicas and limits come from the settings (`JetStreamLayout`, shared/operations/config.py): every stream and bucket has
`layout.replicas` copies (durable consumers inherit their stream's), keeps messages for its max age and refuses
new ones beyond its max bytes. A stream or bucket declared before with other limits is brought to the new ones.
"""

from __future__ import annotations

import asyncio
import logging
from enum import Enum
from typing import Any

from nats.errors import NoRespondersError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, BadRequestError, NotFoundError, ServiceUnavailableError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from shared.operations.config import DUPLICATE_WINDOW_S, JetStreamLayout, Retention
from shared.wire import subjects
from shared.wire.messages import PRIORITIES

log = logging.getLogger(__name__)

DEFAULT_LAYOUT = JetStreamLayout()  # one replica, the default limits: a single server, as the tests start one
KV_STREAM = f"KV_{subjects.TASKS_BUCKET}"  # the streams JetStream keeps the buckets in
OBJECT_STREAM = f"OBJ_{subjects.ARTIFACTS_BUCKET}"
JETSTREAM_READY_S = 60.0  # a new cluster elects its leaders in seconds; a minute means something is wrong
# What JetStream answers while a cluster is forming: no meta leader yet (503, or no answer), or not enough peers
# known yet to place the replicas (10005 no suitable peers, 10023 insufficient resources).
NATS_NOT_READY = (ServiceUnavailableError, NoRespondersError, TimeoutError)
CLUSTER_FORMING_CODES = frozenset({10005, 10023})


def _stream(
    name: str, subject: str | list[str], retention: Retention, replicas: int, **extra: Any
) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=[subject] if isinstance(subject, str) else subject,
        # Limits retention for all three; not work-queue, as the orchestrators and the persister both read every request.
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=retention.max_age_s,
        max_bytes=retention.max_bytes,
        discard=DiscardPolicy.NEW,  # full: refuse the publish (the publisher retries) rather than drop unread ones
        num_replicas=replicas,
        duplicate_window=DUPLICATE_WINDOW_S,
        **extra,
    )


def stream_configs(layout: JetStreamLayout) -> tuple[StreamConfig, ...]:
    """ASSAY_REQUESTS, ASSAY_EVENTS, ASSAY_DLQ and ASSAY_ADVISORIES as `layout` wants them."""
    # The server's max-deliveries advisories about the two streams Assay consumes; the messages they name stay in
    # those streams (limits retention), so the persister reads each one back by its sequence. Kept as long as the
    # requests they mostly name (they are a few hundred bytes each).
    advisories = [subjects.max_deliveries_advisories(stream) for stream in subjects.CONSUMED_STREAMS]
    return (
        _stream(subjects.REQUESTS_STREAM, subjects.REQUESTS_ALL, layout.requests, layout.replicas),
        _stream(
            subjects.EVENTS_STREAM, subjects.EVENTS_ALL, layout.events, layout.replicas, allow_direct=True
        ),
        _stream(subjects.DLQ_STREAM, subjects.DLQ_ALL, layout.dead_letters, layout.replicas),
        _stream(subjects.ADVISORIES_STREAM, advisories, layout.requests, layout.replicas),
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


async def declare_streams(js: JetStreamContext, layout: JetStreamLayout = DEFAULT_LAYOUT) -> None:
    """Create the streams that are missing; bring one whose configuration is out of date (an older release, other
    limits or replicas) up to date."""
    for config in stream_configs(layout):
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


async def wait_for_jetstream(js: JetStreamContext, timeout_s: float = JETSTREAM_READY_S) -> None:
    """Until JetStream answers; in a cluster, that is once the nodes have elected their meta leader, without which
    no stream can be declared. TimeoutError after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            await js.account_info()
            return
        except NATS_NOT_READY as error:
            if loop.time() > deadline:
                raise TimeoutError(f"JetStream not ready after {timeout_s:g} s: {error!r}") from error
            await asyncio.sleep(0.25)


def _not_ready(error: Exception) -> bool:
    """Whether `error` says the cluster is still forming (retry), not that the request is wrong."""
    if isinstance(error, APIError) and not isinstance(error, ServiceUnavailableError):
        return error.err_code in CLUSTER_FORMING_CODES
    return isinstance(error, NATS_NOT_READY)


async def declare_all(
    js: JetStreamContext,
    ack_wait_s: float,
    max_deliver: int,
    layout: JetStreamLayout = DEFAULT_LAYOUT,
    timeout_s: float = JETSTREAM_READY_S,
) -> None:
    """Every stream, bucket and durable consumer Assay uses, with the layout's replicas and limits (what the
    supervisor does as `admin` at start). Waits for JetStream first, and retries while a new cluster cannot yet
    place the replicas, up to `timeout_s`."""
    await wait_for_jetstream(js, timeout_s)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            await _declare_everything(js, ack_wait_s, max_deliver, layout)
            return
        except Exception as error:
            if not _not_ready(error) or loop.time() > deadline:
                raise
            log.info("JetStream not ready to declare (%r); trying again", error)
            await asyncio.sleep(0.5)


async def _declare_everything(
    js: JetStreamContext, ack_wait_s: float, max_deliver: int, layout: JetStreamLayout
) -> None:
    await declare_streams(js, layout)
    await tasks_bucket(js, layout)
    await keep_limits(js, KV_STREAM, layout.tasks_bucket, layout.replicas)
    await artifacts_bucket(js, layout)
    await keep_limits(js, OBJECT_STREAM, layout.artifacts, layout.replicas)
    consumers = [(subjects.REQUESTS_STREAM, c) for c in orchestrator_consumers(ack_wait_s, max_deliver)]
    for stream, config in consumers + persister_consumers(ack_wait_s, max_deliver):
        await declare_consumer(js, stream, config)


async def keep_limits(js: JetStreamContext, stream: str, retention: Retention, replicas: int) -> None:
    """Bring a bucket's stream to `retention` and `replicas` when it was made with others (the buckets' own
    lookups never change an existing bucket)."""
    current = (await js.stream_info(stream)).config
    if (current.max_age or 0.0, current.max_bytes, current.num_replicas) == (
        retention.max_age_s,
        retention.max_bytes,
        replicas,
    ):
        return
    log.info("bucket stream %s: new limits %s, %d replicas", stream, retention, replicas)
    await js.update_stream(
        current.evolve(max_age=retention.max_age_s, max_bytes=retention.max_bytes, num_replicas=replicas)
    )


async def tasks_bucket(js: JetStreamContext, layout: JetStreamLayout = DEFAULT_LAYOUT) -> KeyValue:
    """Key-value bucket for accepted-task placeholders and cancel markers (kept a day by default)."""
    try:
        return await js.key_value(subjects.TASKS_BUCKET)
    except NotFoundError:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=subjects.TASKS_BUCKET,
                ttl=layout.tasks_bucket.max_age_s,
                max_bytes=layout.tasks_bucket.max_bytes,
                storage=StorageType.FILE,
                replicas=layout.replicas,
            )
        )


async def artifacts_bucket(js: JetStreamContext, layout: JetStreamLayout = DEFAULT_LAYOUT) -> ObjectStore:
    """Object store for payloads larger than a message may be (kept a week by default)."""
    try:
        return await js.object_store(subjects.ARTIFACTS_BUCKET)
    except NotFoundError:
        return await js.create_object_store(
            subjects.ARTIFACTS_BUCKET,
            ObjectStoreConfig(
                ttl=layout.artifacts.max_age_s,
                max_bytes=layout.artifacts.max_bytes,
                storage=StorageType.FILE,
                replicas=layout.replicas,
            ),
        )
