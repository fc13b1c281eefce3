"""A real three-node JetStream cluster (three nats-server processes on free loopback ports, routed, one store
each): Assay's streams and buckets are declared on it with three replicas and the configured limits; limits
changed later are applied to the existing streams and buckets; routes admit only the other nodes; the replica
settings follow ASSAY_NATS_URL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy

from shared.jetstream.connection import connect
from shared.jetstream.nats_cluster import NatsCluster, node_name
from shared.jetstream.nats_users import ADMIN, creds_of, generate_credentials
from shared.jetstream.natsd import EmbeddedNats
from shared.jetstream.publishing import PUBLISH_PATIENCE_S, PublishFailed, publish_confirmed
from shared.jetstream.streams import KV_STREAM, OBJECT_STREAM, declare_all, declare_streams
from shared.operations.config import JetStreamLayout, Retention, load_settings
from shared.wire import subjects
from tests.support.ports import WORKER_RANGE

STREAMS = (subjects.REQUESTS_STREAM, subjects.EVENTS_STREAM, subjects.DLQ_STREAM, KV_STREAM, OBJECT_STREAM)
GIB = 1024**3


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[NatsCluster, dict[str, str]]]:
    credentials = generate_credentials()
    nodes = NatsCluster(tmp_path / "cluster", 3, credentials=credentials, port_range=WORKER_RANGE)
    await nodes.start()
    yield nodes, credentials
    await nodes.stop()


def layout(replicas: int, events_bytes: int = 2 * GIB, tasks_age_s: float = 3600.0) -> JetStreamLayout:
    return JetStreamLayout(
        replicas=replicas,
        events=Retention(max_age_s=2 * 86400.0, max_bytes=events_bytes),
        tasks_bucket=Retention(max_age_s=tasks_age_s, max_bytes=64 * 1024 * 1024),
    )


async def test_streams_and_buckets_have_three_replicas_on_three_nodes(
    cluster: tuple[NatsCluster, dict[str, str]],
) -> None:
    nodes, credentials = cluster
    assert len(nodes.url.split(",")) == 3
    admin = await connect(nodes.url, "test-admin", creds_of(credentials, ADMIN))
    try:
        js = admin.jetstream()
        # declare_all waits for the meta leader itself: called at once after the processes listen
        await declare_all(js, ack_wait_s=10, max_deliver=5, layout=layout(3))
        for name in STREAMS:
            info = await js.stream_info(name)
            assert info.config.num_replicas == 3, name
            assert info.cluster is not None and info.cluster.name == "assay"
            peers = {info.cluster.leader, *(peer.name for peer in info.cluster.replicas or [])}
            assert peers == {node_name(i) for i in range(3)}, (name, info.cluster)
        events = (await js.stream_info(subjects.EVENTS_STREAM)).config
        assert (events.max_age, events.max_bytes, events.discard) == (2 * 86400.0, 2 * GIB, DiscardPolicy.NEW)
        tasks = (await js.stream_info(KV_STREAM)).config
        assert (tasks.max_age, tasks.max_bytes) == (3600.0, 64 * 1024 * 1024)
        durable = await js.consumer_info(subjects.REQUESTS_STREAM, subjects.PERSISTER_REQUESTS_DURABLE)
        assert durable.cluster is not None and len(durable.cluster.replicas or []) == 2  # inherits R3

        # A message written through one node is on the others: read it back through each node alone.
        await js.publish("assay.dlq.test", b"kept", headers={"Nats-Msg-Id": "kept-1"})
        for node in nodes.nodes:
            alone = await nats.connect(node.url, user=ADMIN, password=credentials[ADMIN])
            try:
                got = await alone.jetstream().get_last_msg(subjects.DLQ_STREAM, "assay.dlq.test")
                assert got.data == b"kept"
            finally:
                await alone.close()
    finally:
        await admin.close()


async def route_answer(port: int, credentials: dict[str, str]) -> bytes:
    """What a node's route listener answers a peer that logs in with `credentials` and pings."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert (await reader.readline()).startswith(b"INFO ")
        hello = {"verbose": False, "pedantic": False, "name": "intruder", "cluster": "assay", **credentials}
        writer.write(b"CONNECT " + json.dumps(hello).encode() + b"\r\nPING\r\n")
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()


async def test_only_a_node_with_the_route_password_may_join(
    cluster: tuple[NatsCluster, dict[str, str]],
) -> None:
    nodes, _ = cluster
    routes = nodes.nodes[0].routes
    assert routes is not None
    assert await route_answer(routes.port, {}) == b"-ERR 'Authorization Violation'\r\n"
    wrong = {"user": "route", "pass": "guessed"}
    assert await route_answer(routes.port, wrong) == b"-ERR 'Authorization Violation'\r\n"
    assert await route_answer(routes.port, {"user": "route", "pass": routes.password}) == b"PONG\r\n"


async def test_changed_limits_are_applied_to_existing_streams_and_buckets(
    cluster: tuple[NatsCluster, dict[str, str]],
) -> None:
    nodes, credentials = cluster
    admin = await connect(nodes.url, "test-admin", creds_of(credentials, ADMIN))
    try:
        js = admin.jetstream()
        await declare_all(js, ack_wait_s=10, max_deliver=5, layout=layout(3))
        await js.publish("assay.events.task_0123456789ab.started", b"{}", headers={"Nats-Msg-Id": "e-1"})

        await declare_all(js, 10, 5, layout(3, events_bytes=3 * GIB, tasks_age_s=7200.0))

        events = await js.stream_info(subjects.EVENTS_STREAM)
        assert events.config.max_bytes == 3 * GIB
        assert events.state.messages == 1  # updated in place, not recreated
        assert (await js.stream_info(KV_STREAM)).config.max_age == 7200.0
    finally:
        await admin.close()


async def stream_settings(js: JetStreamContext) -> dict[str, tuple[float | None, int | None, int | None]]:
    found = {}
    for name in (subjects.REQUESTS_STREAM, subjects.EVENTS_STREAM, subjects.DLQ_STREAM):
        config = (await js.stream_info(name)).config
        found[name] = (config.max_age, config.max_bytes, config.num_replicas)
    return found


async def test_a_single_server_gets_one_replica_and_the_documented_default_limits(
    nats_server: EmbeddedNats,
) -> None:
    settings = load_settings({"ASSAY_NATS_URL": nats_server.url})
    assert (
        settings.jetstream == JetStreamLayout()
    )  # no variable set: the defaults of shared/operations/config.py
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await declare_streams(js, settings.jetstream)
        defaults = JetStreamLayout()
        assert await stream_settings(js) == {
            subjects.REQUESTS_STREAM: (defaults.requests.max_age_s, defaults.requests.max_bytes, 1),
            subjects.EVENTS_STREAM: (defaults.events.max_age_s, defaults.events.max_bytes, 1),
            subjects.DLQ_STREAM: (defaults.dead_letters.max_age_s, defaults.dead_letters.max_bytes, 1),
        }
        smaller = msgspec.structs.replace(defaults, requests=Retention(3600.0, 1024 * 1024))
        await declare_streams(js, smaller)
        assert (await stream_settings(js))[subjects.REQUESTS_STREAM] == (3600.0, 1024 * 1024, 1)
    finally:
        await nc.close()


async def test_a_full_stream_refuses_the_next_message_at_once_and_keeps_the_old_ones(
    nats_server: EmbeddedNats,
) -> None:
    tiny = msgspec.structs.replace(JetStreamLayout(), dead_letters=Retention(3600.0, 400))
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await declare_streams(js, tiny)
        subject = "assay.dlq.ASSAY_EVENTS.persister-events"
        stored = 0
        started = asyncio.get_running_loop().time()
        with pytest.raises(PublishFailed, match="maximum bytes exceeded"):
            for number in range(20):
                await publish_confirmed(js, subject, b"x" * 100, f"letter-{number}")
                stored += 1
        # refused for good: not retried for the whole patience as a passing outage would be
        assert asyncio.get_running_loop().time() - started < PUBLISH_PATIENCE_S / 2
        state = (await js.stream_info(subjects.DLQ_STREAM)).state
        assert 0 < stored == state.messages and state.first_seq == 1  # nothing old was dropped for it
    finally:
        await nc.close()


def test_replicas_follow_the_number_of_servers_unless_set() -> None:
    one = "nats://127.0.0.1:4222"
    three = "nats://a:4222,nats://b:4222, nats://c:4222"
    assert load_settings({"ASSAY_NATS_URL": one}).jetstream.replicas == 1
    assert load_settings({"ASSAY_NATS_URL": three}).jetstream.replicas == 3
    assert load_settings({"ASSAY_NATS_URL": three, "ASSAY_NATS_REPLICAS": "1"}).jetstream.replicas == 1
    limits = load_settings({"ASSAY_EVENTS_MAX_AGE_S": "0", "ASSAY_EVENTS_MAX_BYTES": "-1"}).jetstream.events
    assert limits == Retention(max_age_s=0.0, max_bytes=-1)  # no limits, when asked for
