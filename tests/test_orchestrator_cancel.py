"""Cancelling tasks: a running one (the analyzer is sent `cancel`), one not started yet (the tasks bucket's marker),
one whose orchestrator shuts down (its request goes back to JetStream for another replica), and one whose analyzer
kept the results of the tools that had finished (published as its `service` event before `cancelled`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shared.jetstream.natsd import EmbeddedNats
from shared.jetstream.streams import tasks_bucket
from shared.wire.messages import (
    AnalysisRequest,
    CancelRequest,
    ServiceFinished,
    TaskCancelled,
    TaskCompleted,
    TaskStarted,
    encode,
)
from shared.wire.subjects import cancel_key, cancel_subject
from tests.support.orchestrator import (
    Bench,
    ScriptedAnalyzer,
    analyzers,
    bench_for,
    cancelled_result,
    kind,
    orchestrated,
    running_orchestrator,
    settings_for,
    terminal_of,
)


async def request_then_cancel(bench: Bench, peer: ScriptedAnalyzer) -> AnalysisRequest:
    """Request a static analysis and cancel it once the analyzer runs it."""
    request = await bench.request("static")
    await asyncio.wait_for(peer.analyze_received.wait(), 5)
    cancel = CancelRequest(task_id=request.task.id, reason="cancelled by the test")
    await bench.nc.publish(cancel_subject(request.task.id), encode(cancel))
    return request


async def test_cancel_reaches_the_analyzer_at_once_and_publishes_cancelled(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["hold"])
    async with orchestrated(nats_server.url, tmp_path, [peer]) as bench:
        request = await request_then_cancel(bench, peer)
        # Within the block: sent while the task runs, not by the shutdown that ends the block (the scripted run
        # holds until it is cancelled, so nothing else would send it).
        await asyncio.wait_for(peer.cancel_received.wait(), 15)
        events = await bench.events.terminal(request.task.id)
        await bench.settled()  # the request is acknowledged, not redelivered
    assert [frame.id for frame in peer.cancels] == [f"{request.task.id}:static"]
    cancelled = terminal_of(events)
    assert isinstance(cancelled, TaskCancelled) and cancelled.reason == "cancelled by the test"
    assert not any(isinstance(item.event, ServiceFinished) for item in events)  # stopped waiting: no outcome
    assert cancelled.services == []


async def test_the_results_an_analyzer_kept_on_cancel_are_published_before_cancelled(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["keep"])
    async with orchestrated(nats_server.url, tmp_path, [peer]) as bench:
        request = await request_then_cancel(bench, peer)
        events = await bench.events.terminal(request.task.id)
        await bench.settled()
    assert [kind(item.event) for item in events][-2:] == ["service", "cancelled"]
    service = events[-2].event
    assert isinstance(service, ServiceFinished) and service.status == "cancelled"
    assert service.result == cancelled_result("static")
    assert {run.tool: run.status for run in service.result.tools} == {
        "bandit": "success",
        "pylint": "cancelled",
    }
    cancelled = terminal_of(events)
    assert isinstance(cancelled, TaskCancelled) and cancelled.services == ["static"]


async def test_cancel_marker_of_a_task_not_yet_started_publishes_cancelled_without_running_it(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["result"])
    async with analyzers(peer), bench_for(nats_server.url) as bench:
        settings = settings_for(nats_server.url, tmp_path, [peer])
        request = await bench.request("static")  # queued while no orchestrator runs
        tasks = await tasks_bucket(bench.js)
        await tasks.put(
            cancel_key(request.task.id), encode(CancelRequest(task_id=request.task.id, reason="too late"))
        )
        async with running_orchestrator(settings):
            events = await bench.events.terminal(request.task.id)
            await bench.settled()
    assert [kind(item.event) for item in events] == ["cancelled"]
    cancelled = events[0].event
    assert isinstance(cancelled, TaskCancelled) and cancelled.reason == "too late"
    assert peer.analyzed == []


async def test_shutdown_cancels_the_analyzer_and_hands_the_request_to_another_replica(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["hold", "result"])  # holds the first run, answers the second
    async with analyzers(peer), bench_for(nats_server.url) as bench:
        settings = settings_for(nats_server.url, tmp_path, [peer])
        async with running_orchestrator(settings, worker="replica-1:1"):
            request = await bench.request("static")
            await asyncio.wait_for(peer.analyze_received.wait(), 5)
        # Leaving the block stopped replica 1: its analyzer was told to stop, its request nak'd.
        assert [frame.id for frame in peer.cancels] == [f"{request.task.id}:static"]
        assert not any(
            kind(item.event) in ("completed", "failed", "cancelled")
            for item in bench.events.of(request.task.id)
        )
        started = asyncio.get_running_loop().time()
        async with running_orchestrator(settings, worker="replica-2:2"):
            events = await bench.events.terminal(request.task.id)
            await bench.settled()
        taken_over_in = asyncio.get_running_loop().time() - started
    assert taken_over_in < settings.ack_wait_s  # nak'd, not left to time out
    workers = [item.event.worker for item in events if isinstance(item.event, TaskStarted)]
    assert workers == ["replica-1:1", "replica-2:2"]
    ending = terminal_of(events)
    assert isinstance(ending, TaskCompleted) and ending.status == "completed"
    assert len(peer.analyzed) == 2
