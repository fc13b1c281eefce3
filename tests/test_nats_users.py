"""The embedded NATS server locked down: only Assay's users get in, each can do its own job and nothing more;
above all, nobody but the orchestrator can publish task events (a forged `service` + `completed` pair from the
gateway's credentials is refused and never stored)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import msgspec
import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from services.orchestrator.service import serve as serve_orchestrator
from services.persister.service import run as run_persister
from shared.jetstream.connection import BadCredentials, connect, credential_options
from shared.jetstream.nats_users import (
    ADMIN,
    GATEWAY,
    ORCHESTRATOR,
    PERSISTER,
    SUBSCRIBER,
    creds_of,
    generate_credentials,
)
from shared.jetstream.natsd import EmbeddedNats
from shared.jetstream.streams import declare_all, orchestrator_consumers, persister_consumers
from shared.operations.config import Settings
from shared.operations.redact import masked_url
from shared.store.database import create_engine
from shared.wire import subjects
from shared.wire.messages import ServiceFinished, TaskCompleted, encode, event_kind
from shared.wire.tasks import TaskRef, new_task_id
from tests.support.gateway import MODEL, bearer, gateway_settings, issue_token, running_gateway
from tests.support.orchestrator import ScriptedAnalyzer, analyzers, sample_result, settings_for
from tests.support.ports import WORKER_RANGE

VIOLATION = "Violation"  # the server logs "Publish Violation", "Subscription Violation"


@pytest.fixture
async def locked_nats(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    """A nats-server admitting only Assay's users, with everything declared as `admin` (as `assay up` does)."""
    server = EmbeddedNats(tmp_path / "nats", credentials=generate_credentials(), port_range=WORKER_RANGE)
    await server.start()
    admin = await connect(server.url, "test-admin", as_user(server, ADMIN))
    await declare_all(admin.jetstream(), ack_wait_s=6.0, max_deliver=5)
    await admin.close()
    yield server
    await server.stop()


def as_user(server: EmbeddedNats, user: str) -> str:
    assert server.credentials
    return creds_of(server.credentials, user)


async def refused_connection(url: str, **options: str) -> BaseException:
    with pytest.raises(Exception) as refused:  # noqa: PT011 - nats-py raises several kinds; any refusal will do
        await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2, **options)
    return refused.value


async def test_a_client_without_credentials_cannot_connect(locked_nats: EmbeddedNats) -> None:
    error = await refused_connection(locked_nats.url)
    assert "authorization" in repr(error).lower() or isinstance(error, nats.errors.NoServersError)
    await refused_connection(locked_nats.url, user=GATEWAY, password="not-the-password")
    # The configuration holding the passwords is readable by its owner only.
    assert (locked_nats.store_dir / "nats-server.conf").stat().st_mode & 0o077 == 0


async def test_the_gateway_cannot_publish_task_events(locked_nats: EmbeddedNats) -> None:
    gateway = await connect(locked_nats.url, "forger", as_user(locked_nats, GATEWAY))
    admin = await connect(locked_nats.url, "test-admin", as_user(locked_nats, ADMIN))
    try:
        task_id = new_task_id()
        task = TaskRef(id=task_id, model_slug=MODEL, app_number=1, analysis_type="static")
        forged = [
            ServiceFinished(
                task=task,
                service="static",
                status="success",
                result=sample_result("static", "FORGED"),
            ),
            TaskCompleted(
                task=task,
                status="completed",
                services=["static"],
            ),
        ]
        js = gateway.jetstream()
        for event in forged:
            with pytest.raises((nats.errors.Error, TimeoutError)):
                await js.publish(subjects.event_subject(task_id, event_kind(event)), encode(event), timeout=1)
        # Core NATS publishes (no ack asked) are dropped by the server just the same.
        await gateway.publish(subjects.event_subject(task_id, "completed"), encode(forged[1]))
        await gateway.flush()
        info = await admin.jetstream().stream_info(subjects.EVENTS_STREAM)
        assert info.state.messages == 0
        assert VIOLATION in log_of(locked_nats)
    finally:
        await gateway.close()
        await admin.close()


async def test_only_the_orchestrator_publishes_events(locked_nats: EmbeddedNats) -> None:
    persister = await connect(locked_nats.url, "persister", as_user(locked_nats, PERSISTER))
    orchestrator = await connect(locked_nats.url, "orchestrator", as_user(locked_nats, ORCHESTRATOR))
    try:
        task_id = new_task_id()
        event = TaskCompleted(
            task=TaskRef(id=task_id, model_slug=MODEL, app_number=1, analysis_type="static"),
            status="completed",
            services=[],
        )
        subject = subjects.event_subject(task_id, "completed")
        with pytest.raises((nats.errors.Error, TimeoutError)):
            await persister.jetstream().publish(subject, encode(event), timeout=1)
        ack = await orchestrator.jetstream().publish(subject, encode(event), timeout=5)
        assert ack.stream == subjects.EVENTS_STREAM
    finally:
        await persister.close()
        await orchestrator.close()


def durables() -> list[tuple[str, str]]:
    """(stream, name) of every durable consumer Assay declares."""
    orchestrator = [(subjects.REQUESTS_STREAM, config) for config in orchestrator_consumers(6.0, 5)]
    return [
        (stream, str(config.durable_name)) for stream, config in orchestrator + persister_consumers(6.0, 5)
    ]


def takeovers(stream: str, durable: str) -> list[tuple[str, bytes]]:
    """Every request that would delete the durable or rewrite it (here: to a filter that matches nothing and one
    delivery), by each form of the JetStream API."""
    config = {"filter_subject": "assay.nothing.>", "max_deliver": 1, "ack_policy": "explicit"}
    as_name = json.dumps({"stream_name": stream, "config": {**config, "name": durable}}).encode()
    as_durable = json.dumps({"stream_name": stream, "config": {**config, "durable_name": durable}}).encode()
    return [
        (f"$JS.API.CONSUMER.DELETE.{stream}.{durable}", b""),
        (f"$JS.API.CONSUMER.CREATE.{stream}", as_name),  # the legacy form: the name is only in the body
        (f"$JS.API.CONSUMER.CREATE.{stream}.{durable}", as_name),
        (f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.assay.nothing.>", as_name),
        (f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}", as_durable),
    ]


async def answered(client: Client, subject: str, body: bytes) -> str | None:
    """The server's answer to a request, or None when the request was refused (it then gets none)."""
    try:
        return (await client.request(subject, body, timeout=2)).data.decode()
    except (nats.errors.Error, TimeoutError):
        return None


@pytest.mark.parametrize("user", [GATEWAY, ORCHESTRATOR, PERSISTER, SUBSCRIBER])
async def test_no_service_may_delete_or_rewrite_a_durable(locked_nats: EmbeddedNats, user: str) -> None:
    """The red team's F4: the gateway's user deleted the persister's durable (and its CREATE right could rewrite it).
    No user but the admin may delete or change any durable, by any form of the API."""
    admin = await connect(locked_nats.url, "test-admin", as_user(locked_nats, ADMIN))
    client = await connect(locked_nats.url, user, as_user(locked_nats, user))
    try:
        before = {key: await admin.jetstream().consumer_info(*key) for key in durables()}
        attempts = [(key, request) for key in durables() for request in takeovers(*key)]
        answers = await asyncio.gather(*(answered(client, *request) for _key, request in attempts))

        assert len(attempts) == 7 * 5  # four orchestrator durables and three of the persister
        assert {request[0]: answer for (_key, request), answer in zip(attempts, answers, strict=True)} == {
            request[0]: None for _key, request in attempts
        }
        for key, info in before.items():
            after = await admin.jetstream().consumer_info(*key)  # still there, unchanged
            assert (after.config.filter_subject, after.config.max_deliver, after.config.ack_wait) == (
                info.config.filter_subject,
                info.config.max_deliver,
                info.config.ack_wait,
            )
        assert VIOLATION in log_of(locked_nats)
    finally:
        await client.close()
        await admin.close()


MARKER = "assay.events.task_000000000000.marker"  # an event subject no task has


async def until_following(publisher: Client, live: Subscription, timeout_s: float = 10.0) -> None:
    """Publish a marker on the events' subjects until `live` receives one. In two cold CI runs (a fresh clone, the
    machine busy) the first event published right after subscribing never reached the subscription, though the
    server logged no disconnect and the same test passes warm; the cause is not found. The test is about who may
    do what, so it starts from a subscription known to follow; one that never does still fails here."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        await publisher.publish(MARKER, b"{}")
        try:
            await live.next_msg(timeout=0.5)
            return
        except nats.errors.TimeoutError:
            continue
    raise AssertionError(f"the subscription received no event in {timeout_s} s")


async def next_on(live: Subscription, subject: str, timeout_s: float = 10.0) -> Msg:
    """The next message on `subject` (late markers skipped)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        message = await live.next_msg(timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
        if message.subject == subject:
            return message


async def test_a_subscriber_follows_and_replays_events_and_can_do_nothing_else(
    locked_nats: EmbeddedNats,
) -> None:
    subscriber = await connect(locked_nats.url, "outside", as_user(locked_nats, SUBSCRIBER))
    orchestrator = await connect(locked_nats.url, "orchestrator", as_user(locked_nats, ORCHESTRATOR))
    gateway = await connect(locked_nats.url, "gateway", as_user(locked_nats, GATEWAY))
    try:
        task = TaskRef(id=new_task_id(), model_slug=MODEL, app_number=1, analysis_type="static")
        event = TaskCompleted(task=task, status="completed", services=[])
        subject = subjects.event_subject(task.id, "completed")
        live = await subscriber.subscribe(subjects.EVENTS_ALL)
        requests = await subscriber.subscribe(subjects.REQUESTS_ALL)
        await subscriber.flush()
        await until_following(orchestrator, live)
        ack = await orchestrator.jetstream().publish(subject, encode(event), timeout=5)

        assert (await next_on(live, subject)).data == encode(event)
        stored = await subscriber.jetstream().get_msg(subjects.EVENTS_STREAM, seq=ack.seq)
        assert stored.data == encode(event)
        with pytest.raises((nats.errors.Error, TimeoutError)):
            await subscriber.jetstream().publish(subject, encode(event), timeout=1)
        with pytest.raises((nats.errors.Error, TimeoutError)):
            await subscriber.jetstream().subscribe(subjects.EVENTS_ALL, stream=subjects.EVENTS_STREAM)
        await gateway.publish(subjects.request_subject("normal"), b"{}")
        with pytest.raises((nats.errors.Error, TimeoutError)):
            await requests.next_msg(timeout=1)
        assert "Subscription Violation" in log_of(locked_nats)
    finally:
        await subscriber.close()
        await orchestrator.close()
        await gateway.close()


def test_urls_are_logged_without_their_password() -> None:
    assert masked_url("nats://gateway:s3cret@10.0.0.1:4222") == "nats://gateway:***@10.0.0.1:4222"
    assert masked_url("nats://tok3n@a:4222,tls://u:p@b:4222") == "nats://***@a:4222,tls://u:***@b:4222"
    assert masked_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"


def test_nats_creds_are_a_user_and_password_or_a_creds_file(tmp_path: Path) -> None:
    assert credential_options("gateway:pw:with:colons") == {
        "user": "gateway",
        "password": "pw:with:colons",
        "inbox_prefix": "_INBOX_gateway",
    }
    creds = tmp_path / "user.creds"
    creds.write_text("-----BEGIN NATS USER JWT-----\n")
    assert credential_options(str(creds)) == {"user_credentials": str(creds)}
    assert credential_options(None) == {}
    with pytest.raises(BadCredentials):
        credential_options("no-password-here")


def log_of(server: EmbeddedNats) -> str:
    return server.log_file.read_text(errors="replace") if server.log_file.exists() else ""


@asynccontextmanager
async def running_service_loop(
    user_creds: str, settings: Settings, body: str, database_url: str | None = None
) -> AsyncIterator[None]:
    """The orchestrator or the persister in this process, on a connection of its own user."""
    assert settings.nats_url
    nc: Client = await connect(settings.nats_url, body, user_creds)
    engine = create_engine(database_url) if database_url else None
    stop = asyncio.Event()
    if body == ORCHESTRATOR:
        task = asyncio.create_task(serve_orchestrator(nc, settings, stop, worker="locked:1"))
    else:
        assert engine is not None
        task = asyncio.create_task(run_persister(nc, engine, settings, stop))
    try:
        await asyncio.sleep(0.5)
        if task.done():
            task.result()
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await nc.close()
        if engine is not None:
            await engine.dispose()


async def test_each_service_does_its_whole_job_with_its_own_user(
    locked_nats: EmbeddedNats, tmp_path: Path, database_url: str
) -> None:
    """Gateway, orchestrator and persister, each on its own user: a task with a result too large for a message
    (object store) runs to `completed`, its events replay over SSE, a cancel goes out; no permission is missing."""
    peer = ScriptedAnalyzer("static", ["large"])
    orchestrator_settings = settings_for(locked_nats.url, tmp_path, [peer])
    persister_settings = settings_for(
        locked_nats.url,
        tmp_path,
        [peer],
        ASSAY_DATABASE_URL=database_url,
        ASSAY_RESULTS_DIR=str(tmp_path / "results"),
    )
    gateway = gateway_settings(tmp_path, locked_nats.url, database_url)
    gateway = msgspec.structs.replace(gateway, nats_creds=as_user(locked_nats, GATEWAY))
    token = await issue_token(database_url, "tests")
    async with (
        analyzers(peer),
        running_service_loop(as_user(locked_nats, PERSISTER), persister_settings, PERSISTER, database_url),
        running_service_loop(as_user(locked_nats, ORCHESTRATOR), orchestrator_settings, ORCHESTRATOR),
        running_gateway(gateway) as url,
        httpx.AsyncClient(base_url=url, timeout=10, headers=bearer(token)) as http,
    ):
        body = {"model_slug": MODEL, "app_number": 1, "analysis_type": "static"}
        accepted = await http.post("/api/analysis/run", json=body)
        assert accepted.status_code == 202, accepted.text
        task_id = accepted.json()["task_id"]
        assert (await http.get(f"/api/tasks/{task_id}")).status_code == 200  # the tasks bucket, read
        task = await _terminal(http, task_id)
        assert task["status"] == "completed", (task, log_of(locked_nats)[-2000:])
        async with http.stream("GET", f"/api/tasks/{task_id}/events") as stream:
            frames = [line async for line in stream.aiter_lines() if line.startswith("event: ")]
        assert frames[-1] == "event: completed"
        admin = await connect(locked_nats.url, "test-admin", as_user(locked_nats, ADMIN))
        try:  # the result was too large for a message: it went through the object store
            stored = await (await admin.jetstream().object_store(subjects.ARTIFACTS_BUCKET)).get_info(
                f"{task_id}/static.json"
            )
            assert stored.size is not None and stored.size > peer.large_bytes
        finally:
            await admin.close()
        other = await http.post("/api/analysis/run", json={**body, "priority": "low"})
        cancelled = await http.post(f"/api/tasks/{other.json()['task_id']}/cancel")
        assert cancelled.status_code in (200, 202), cancelled.text
    assert VIOLATION not in log_of(locked_nats), log_of(locked_nats)[-3000:]


async def _terminal(http: httpx.AsyncClient, task_id: str, timeout_s: float = 30.0) -> dict[str, object]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        task: dict[str, object] = (await http.get(f"/api/tasks/{task_id}")).json()
        if task.get("status") in ("completed", "partial", "failed", "cancelled"):
            return task
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"task {task_id} not finished: {task}")
        await asyncio.sleep(0.2)
