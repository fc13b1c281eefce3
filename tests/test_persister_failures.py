"""The persister when things go wrong: poison messages, corrupt artifacts, empty or failed services, stale tasks,
a NATS server restart. Real nats-server, real SQLite file, real result folders."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import select

from shared.jetstream.natsd import EmbeddedNats
from shared.jetstream.streams import artifacts_bucket
from shared.store.database import sessions
from shared.store.models import ServiceRun
from shared.wire.messages import ArtifactRef, DeadLetter, TaskFailed
from shared.wire.protocol import ServiceResult
from shared.wire.subjects import (
    ARTIFACTS_BUCKET,
    DLQ_ALL,
    DLQ_STREAM,
    EVENTS_STREAM,
    PERSISTER_EVENTS_DURABLE,
    dlq_subject,
)
from tests.support.persister import (
    APP,
    MODEL,
    Harness,
    eventually,
    publish_scenario,
    read_json,
    result_folder,
    running_persister,
    scenario,
)


@pytest.fixture
async def harness(nats_server: EmbeddedNats, database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_persister(nats_server.url, database_url, tmp_path) as running:
        yield running


async def dead_letters(harness: Harness, count: int) -> list[DeadLetter]:
    """The first `count` letters in ASSAY_DLQ, each checked to be on the persister's event DLQ subject."""
    subscription = await harness.js.pull_subscribe(DLQ_ALL, stream=DLQ_STREAM)
    letters: list[DeadLetter] = []
    deadline = 10
    while len(letters) < count and deadline > 0:
        try:
            messages = await subscription.fetch(batch=count - len(letters), timeout=1)
        except TimeoutError:
            deadline -= 1
            continue
        for message in messages:
            assert message.subject == dlq_subject(EVENTS_STREAM, PERSISTER_EVENTS_DURABLE)
            letters.append(msgspec.json.decode(message.data, type=DeadLetter))
            await message.ack()
    await subscription.unsubscribe()
    assert len(letters) == count, letters
    return letters


async def test_poison_messages_go_to_the_dlq_with_a_reason_and_the_consumer_keeps_going(
    harness: Harness,
) -> None:
    await harness.publish("assay.events.task_000000000000.started", b"\x00\xffnot json at all{")
    await harness.publish("assay.events.task_000000000001.progress", b"")
    await harness.publish(
        "assay.events.task_000000000002.started", b'{"kind": "started", "task": {"id": "task_000000000002"}}'
    )
    case = scenario()
    await publish_scenario(harness, case)

    await harness.wait_status(case.request.task.id, "completed")  # the consumer went on past the poison
    letters = {letter.task_id: letter for letter in await dead_letters(harness, 3)}
    assert set(letters) == {"task_000000000000", "task_000000000001", "task_000000000002"}
    for letter in letters.values():
        assert letter.stream == EVENTS_STREAM and letter.consumer == PERSISTER_EVENTS_DURABLE
        assert letter.reason.startswith("undecodable message")
        assert letter.deliveries == 1
    assert "not json at all" in letters["task_000000000000"].payload
    assert "empty" in letters["task_000000000001"].reason
    assert "model_slug" in letters["task_000000000002"].reason  # names the missing field
    assert await harness.task("task_000000000000") is None


async def test_corrupt_artifact_is_retried_then_dead_lettered_and_its_task_failed(
    nats_server: EmbeddedNats, database_url: str, tmp_path: Path
) -> None:
    async with running_persister(nats_server.url, database_url, tmp_path, max_deliver=3) as harness:
        case = scenario()
        task_id = case.request.task.id
        name = f"{task_id}/static.json"
        data = msgspec.json.encode(case.service.result)
        await (await artifacts_bucket(harness.js)).put(name, data)
        wrong = ArtifactRef(bucket=ARTIFACTS_BUCKET, name=name, size=len(data), sha256="0" * 64)
        service = msgspec.structs.replace(case.service, result=None, artifact=wrong)
        await harness.publish_request(case.request, case.parent)
        await harness.publish_event(case.started, case.parent)
        await harness.publish_event(service, case.parent)  # the orchestrator dies: no terminal event follows

        task = await harness.wait_status(task_id, "failed", timeout_s=20)  # deliveries after 0 s, 1 s, 2 s
        assert "gave up" in (task.status_reason or "") and "sha256" in (task.status_reason or "")
        (letter,) = await dead_letters(harness, 1)
        assert letter.task_id == task_id and letter.deliveries == 3 and "sha256" in letter.reason
        document = read_json(result_folder(harness, task) / f"{MODEL}_app{APP}_{task_id}.json")
        assert document["results"]["success"] is False
        assert document["metadata"]["status_reason"] == task.status_reason


async def test_empty_payload_is_recorded_with_a_warning(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="services.persister")
    case = scenario(result=ServiceResult(service="static", status="success"))
    task_id = case.request.task.id
    await publish_scenario(harness, case)

    task = await harness.wait_status(task_id, "completed")
    assert await harness.counts(task_id) == {"service_runs": 1, "tool_runs": 0, "findings": 0}
    warnings = [
        record
        for record in caplog.records
        if record.levelno == logging.WARNING and "empty payload" in record.getMessage()
    ]
    assert warnings and getattr(warnings[0], "task_id", None) == task_id
    folder = result_folder(harness, task)
    assert read_json(folder / "services" / "static.json")["status"] == "success"
    assert read_json(folder / f"{MODEL}_app{APP}_{task_id}.json")["summary"]["total_findings"] == 0


async def test_failed_service_without_result_is_recorded_with_its_error(harness: Harness) -> None:
    case = scenario()
    task_id = case.request.task.id
    error = "analyzer static sent nothing for 15 s"
    service = msgspec.structs.replace(case.service, status="failed", result=None, error=error)
    failed = TaskFailed(
        task=case.request.task,
        reason=f"static: {error}",
        services=["static"],
    )
    await publish_scenario(harness, dataclasses.replace(case, service=service, completed=failed))  # type: ignore[arg-type]

    task = await harness.wait_status(task_id, "failed")
    assert task.status_reason == f"static: {error}"
    async with sessions(harness.engine)() as session:
        run = (await session.scalars(select(ServiceRun).where(ServiceRun.task_id == task_id))).one()
    assert (run.status, run.error, run.findings_count) == ("failed", error, 0)
    folder = result_folder(harness, task)
    assert read_json(folder / "services" / "static.json")["error"] == error
    document = read_json(folder / f"{MODEL}_app{APP}_{task_id}.json")
    assert document["results"]["success"] is False and document["summary"]["status"] == "failed"


async def test_reaper_fails_a_stale_running_task_with_a_folder(
    nats_server: EmbeddedNats, database_url: str, tmp_path: Path
) -> None:
    async with running_persister(
        nats_server.url, database_url, tmp_path, stale_task_s=0.5, reap_interval_s=0.2
    ) as harness:
        stale = scenario()
        waiting = scenario()
        await harness.publish_request(stale.request, stale.parent)
        await harness.publish_event(stale.started, stale.parent)  # then silence: its orchestrator died
        # pending, never started: not the reaper's
        await harness.publish_request(waiting.request, waiting.parent)

        task = await harness.wait_status(stale.request.task.id, "failed", timeout_s=10)
        assert task.status_reason == "no event from the orchestrator for 0.5 s"
        document = read_json(result_folder(harness, task) / f"{MODEL}_app{APP}_{task.task_id}.json")
        assert document["results"]["success"] is False
        assert document["metadata"]["status_reason"] == task.status_reason
        pending = await harness.task(waiting.request.task.id)
        assert pending is not None and pending.status == "pending"


async def test_reaper_fails_a_task_no_orchestrator_ever_started(
    nats_server: EmbeddedNats, database_url: str, tmp_path: Path
) -> None:
    async with running_persister(
        nats_server.url, database_url, tmp_path, pending_limit_s=0.5, reap_interval_s=0.2
    ) as harness:
        waiting = scenario()
        await harness.publish_request(waiting.request, waiting.parent)  # and no orchestrator takes it
        task = await harness.wait_status(waiting.request.task.id, "failed", timeout_s=10)
        assert task.status_reason == "not started within 0.5 s: no orchestrator took the request"
        assert result_folder(harness, task).is_dir()


async def test_fetch_loops_survive_a_nats_server_restart(harness: Harness, nats_server: EmbeddedNats) -> None:
    before = scenario()
    await publish_scenario(harness, before)
    await harness.wait_status(before.request.task.id, "completed")

    await nats_server.stop()
    await nats_server.start()
    after = scenario()

    async def published() -> bool:
        try:
            await publish_scenario(harness, after)  # Nats-Msg-Id makes a repeated attempt harmless
        except Exception:  # noqa: BLE001 - the client is still reconnecting
            return False
        return True

    await eventually(published, 20, "could not publish after the restart")
    task = await harness.wait_status(after.request.task.id, "completed", timeout_s=30)
    assert task.findings_count == 250
