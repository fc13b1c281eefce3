"""The request side of the orchestrator: priorities, poison requests, redeliveries, processing errors, concurrency,
and a NATS server restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
from nats.js.errors import NotFoundError

from shared.jetstream.natsd import EmbeddedNats
from shared.wire import subjects
from shared.wire.messages import DeadLetter, TaskCompleted, TaskFailed, encode
from shared.wire.tasks import TaskRef
from tests.support.orchestrator import (
    MODEL,
    ScriptedAnalyzer,
    analyzers,
    bench_for,
    eventually,
    kind,
    orchestrated,
    running_orchestrator,
    settings_for,
    terminal_of,
)


async def dead_letter(bench_js, durable: str, timeout_s: float = 10.0) -> DeadLetter:  # type: ignore[no-untyped-def]
    subject = subjects.dlq_subject(subjects.REQUESTS_STREAM, durable)

    async def last() -> DeadLetter | None:
        try:
            raw = await bench_js.get_last_msg(subjects.DLQ_STREAM, subject)
        except NotFoundError:
            return None
        return msgspec.json.decode(raw.data, type=DeadLetter)

    return await eventually(last, timeout_s, f"nothing on {subject}")


async def subscribed(bench_js) -> None:  # type: ignore[no-untyped-def]
    """Wait until the orchestrator has declared its durables (the last one it declares is `low`'s)."""

    async def declared() -> bool:
        try:
            await bench_js.consumer_info(subjects.REQUESTS_STREAM, subjects.orchestrator_durable("low"))
        except NotFoundError:
            return False
        return True

    await eventually(declared, 5, "the orchestrator never declared its durables")
    await asyncio.sleep(0.2)


async def test_urgent_requests_are_taken_before_queued_normal_ones(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["result"])
    async with analyzers(peer), bench_for(nats_server.url) as bench:
        settings = settings_for(nats_server.url, tmp_path, [peer], ASSAY_ORCHESTRATOR_CONCURRENCY="1")
        # Queued before any orchestrator runs, least urgent first.
        queued = [
            await bench.request("static", priority=priority)
            for priority in ("low", "normal", "normal", "high", "urgent")
        ]
        async with running_orchestrator(settings):
            for request in queued:
                await bench.events.terminal(request.task.id)
            await bench.settled()
    by_task = {request.task.id: request.priority for request in queued}
    order = [by_task[frame.task.id] for frame in peer.analyzed]
    assert order == ["urgent", "high", "normal", "normal", "low"]


async def test_urgent_request_starts_before_low_ones_accepted_after_it_while_low_work_fills_the_queue(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["chatty"])  # each run takes about 0.4 s: the low backlog stays
    async with analyzers(peer), bench_for(nats_server.url) as bench:
        settings = settings_for(nats_server.url, tmp_path, [peer], ASSAY_ORCHESTRATOR_CONCURRENCY="2")
        backlog = [await bench.request("static", priority="low") for _ in range(20)]
        async with running_orchestrator(settings):

            async def busy() -> bool:
                return len(peer.analyzed) >= 2

            await eventually(busy, 10, "the low backlog never started")
            before = len(peer.analyzed)
            urgent = await bench.request("static", priority="urgent")
            later = [await bench.request("static", priority="low") for _ in range(5)]
            await bench.events.terminal(urgent.task.id, timeout_s=15)
        started = [frame.task.id for frame in peer.analyzed]
    position = started.index(urgent.task.id)
    after = [started.index(request.task.id) for request in later if request.task.id in started]
    assert all(position < index for index in after), (position, after)
    # It took one of the next free slots, ahead of the low work queued before it (some held by the replica already).
    assert position <= before + 2 < len(backlog), (before, started)


async def test_no_more_tasks_run_at_once_than_the_replica_may(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["hold"])
    async with analyzers(peer), bench_for(nats_server.url) as bench:
        settings = settings_for(nats_server.url, tmp_path, [peer], ASSAY_ORCHESTRATOR_CONCURRENCY="2")
        async with running_orchestrator(settings):
            for _ in range(3):
                await bench.request("static")

            async def two_started() -> bool:
                return len(peer.analyzed) >= 2

            await eventually(two_started, 5, "two runs never started")
            await asyncio.sleep(1.5)  # a free slot would have taken the third by now
            assert len(peer.analyzed) == 2


async def test_poison_request_goes_to_the_dlq_and_its_task_fails_with_the_reason(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["result"])
    async with orchestrated(nats_server.url, tmp_path, [peer]) as bench:
        task_id = "task_0123456789ab"
        body = {
            "task": {"id": task_id, "model_slug": MODEL, "app_number": 1, "analysis_type": "static"},
            "priority": "x",
        }
        await bench.js.publish(subjects.request_subject("normal"), msgspec.json.encode(body))
        letter = await dead_letter(bench.js, "orchestrator-normal")
        events = await bench.events.terminal(task_id)
        await bench.js.publish(subjects.request_subject("high"), b"not json at all")
        unreadable = await dead_letter(bench.js, "orchestrator-high")
        await bench.settled()  # both were termed, neither comes back
    assert letter.task_id == task_id and letter.stream == "ASSAY_REQUESTS"
    assert letter.subject == "assay.requests.normal" and letter.consumer == "orchestrator-normal"
    assert letter.reason.startswith("invalid request: ") and "priority" in letter.reason
    assert msgspec.json.decode(letter.payload) == body
    failed = terminal_of(events)
    assert isinstance(failed, TaskFailed) and failed.reason == letter.reason
    assert failed.task == TaskRef(id=task_id, model_slug=MODEL, app_number=1, analysis_type="static")
    assert unreadable.task_id is None and unreadable.payload == "not json at all"
    assert peer.analyzed == []


async def test_poison_request_naming_no_real_app_gets_no_made_up_failed_event(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["result"])
    async with orchestrated(nats_server.url, tmp_path, [peer]) as bench:
        task_id = "task_0123456789ac"
        body = {"task": {"id": task_id, "model_slug": MODEL, "app_number": 0, "analysis_type": "static"}}
        await bench.js.publish(subjects.request_subject("normal"), msgspec.json.encode(body))
        letter = await dead_letter(bench.js, "orchestrator-normal")
        await bench.settled()
        events = await bench.js.stream_info("ASSAY_EVENTS", subjects_filter=f"assay.events.{task_id}.>")
    assert letter.task_id == task_id and "app_number" in letter.reason
    assert events.state.messages == 0


async def test_request_of_a_task_that_has_ended_is_acknowledged_and_skipped(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["result"])
    async with analyzers(peer), bench_for(nats_server.url) as bench:
        settings = settings_for(nats_server.url, tmp_path, [peer])
        async with running_orchestrator(settings):
            request = await bench.request("static")
            await bench.events.terminal(request.task.id)
        # The same request delivered again, as after a crash between the terminal event and the ack.
        await bench.js.publish(subjects.request_subject("normal"), encode(request))
        async with running_orchestrator(settings):
            await bench.settled()
            await asyncio.sleep(0.3)
    assert len(peer.analyzed) == 1
    assert [kind(item.event) for item in bench.events.of(request.task.id)].count("started") == 1


async def test_processing_error_is_retried_then_sent_to_the_dlq_at_max_deliver(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["result"])
    async with analyzers(peer), bench_for(nats_server.url) as bench:
        settings = settings_for(nats_server.url, tmp_path, [peer], ASSAY_MAX_DELIVER="2")
        async with running_orchestrator(settings):
            await subscribed(bench.js)  # it declares the streams as it subscribes: delete only after that
            await bench.js.delete_stream(subjects.EVENTS_STREAM)  # every event publish now fails
            request = await bench.request("static")
            letter = await dead_letter(bench.js, "orchestrator-normal", timeout_s=15)
            await bench.settled()
    assert letter.task_id == request.task.id and letter.deliveries == 2
    assert letter.reason.startswith("orchestrator gave up after 2 deliveries: could not publish on ")
    assert f"assay.events.{request.task.id}.started" in letter.reason
    assert peer.analyzed == []  # `started` comes before any analyzer is asked


async def test_fetch_loop_survives_a_nats_server_restart(nats_server: EmbeddedNats, tmp_path: Path) -> None:
    peer = ScriptedAnalyzer("static", ["result"])
    async with analyzers(peer):
        settings = settings_for(nats_server.url, tmp_path, [peer])
        async with running_orchestrator(settings) as orchestrator:
            async with bench_for(nats_server.url):
                pass  # streams declared
            await asyncio.sleep(0.5)
            await nats_server.stop()
            await asyncio.sleep(1.0)  # fetches fail meanwhile
            await nats_server.start()
            async with bench_for(nats_server.url) as bench:
                request = await bench.request("static")
                events = await bench.events.terminal(request.task.id, timeout_s=15)
                await bench.settled()
            assert not orchestrator.done()
    ending = terminal_of(events)
    assert isinstance(ending, TaskCompleted) and ending.status == "completed"


async def test_a_run_longer_than_ack_wait_is_not_redelivered_to_another_replica(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["hold"])
    settings = settings_for(nats_server.url, tmp_path, [peer], ASSAY_ACK_WAIT_S="1")
    async with (
        orchestrated(nats_server.url, tmp_path, [peer], "one:1", ASSAY_ACK_WAIT_S="1") as bench,
        running_orchestrator(settings, worker="two:2"),
    ):
        await bench.request("static")
        await asyncio.wait_for(peer.analyze_received.wait(), 5)
        # three and a half ack_waits: in_progress() keeps the request with its replica
        await asyncio.sleep(3.5)
        assert len(peer.analyzed) == 1
