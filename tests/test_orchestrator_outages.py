"""Analyzer outages wait, they do not fail: requests that need an analyzer with no healthy replica are held (no
delivery used up) until one answers, runs an analyzer hands back while shutting down go to another replica, and
only an outage longer than ASSAY_ANALYZER_OUTAGE_S fails the task (tests/test_orchestrator_runs.py has that one).

Real nats-server, scripted analyzers on loopback, the orchestrator in-process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shared.jetstream.natsd import EmbeddedNats
from shared.wire import subjects
from shared.wire.messages import CancelRequest, TaskCancelled, TaskCompleted, encode
from shared.wire.subjects import cancel_subject
from tests.support.orchestrator import (
    ScriptedAnalyzer,
    analyzers,
    bench_for,
    kind,
    running_orchestrator,
    settings_for,
    terminal_of,
)

OUTAGE_S = 4.0  # longer than max_deliver × ack_wait below: a held request must not use its deliveries up


async def test_requests_wait_out_an_outage_longer_than_their_deliveries_and_all_complete(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["result"])  # down: nothing listens on its port yet
    settings = settings_for(
        nats_server.url,
        tmp_path,
        [peer],
        ASSAY_ACK_WAIT_S="1",
        ASSAY_MAX_DELIVER="2",
        ASSAY_ANALYZER_OUTAGE_S="60",
    )
    async with bench_for(nats_server.url) as bench, running_orchestrator(settings):
        first = await bench.request("static")
        # It started before anyone knew of the outage; its run waits for a replica.
        await bench.events.until(lambda: bool(bench.events.of(first.task.id)), 10, "first task not started")
        later = [await bench.request("static") for _ in range(2)]
        await asyncio.sleep(OUTAGE_S)  # the outage goes on
        assert [kind(item.event) for item in bench.events.of(first.task.id)] == ["started"]
        for request in later:  # taken during a known outage: they wait before they start
            assert bench.events.of(request.task.id) == []
        async with analyzers(peer):  # the analyzer is back
            endings = [
                terminal_of(await bench.events.terminal(request.task.id, timeout_s=20))
                for request in [first, *later]
            ]
            await bench.settled()
        durable = await bench.js.consumer_info(
            subjects.REQUESTS_STREAM, subjects.orchestrator_durable("normal")
        )
        dead = await bench.js.stream_info(subjects.DLQ_STREAM)
    assert all(isinstance(ending, TaskCompleted) and ending.status == "completed" for ending in endings)
    assert durable.num_redelivered == 0  # held with in_progress(), never handed back or redelivered
    assert dead.state.messages == 0
    assert len(peer.analyzed) == 3


async def test_a_run_handed_back_by_a_stopping_replica_completes_on_another(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    stopping = ScriptedAnalyzer("static", ["handback"])
    other = ScriptedAnalyzer("static", ["result"], active_runs=1)  # busier: the stopping one is chosen first
    async with analyzers(stopping, other), bench_for(nats_server.url) as bench:
        settings = settings_for(nats_server.url, tmp_path, [stopping, other])
        async with running_orchestrator(settings):
            request = await bench.request("static")
            events = await bench.events.terminal(request.task.id)
    ending = terminal_of(events)
    assert isinstance(ending, TaskCompleted) and ending.status == "completed", ending
    run_id = f"{request.task.id}:static"
    assert [frame.id for frame in stopping.analyzed] == [run_id]
    assert [frame.id for frame in other.analyzed] == [run_id]  # the same run, again, elsewhere
    assert [kind(item.event) for item in events].count("service") == 1


async def test_a_draining_replica_is_not_chosen_and_its_return_ends_the_wait(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["result"], draining=True)  # answers health, takes no new run
    async with analyzers(peer), bench_for(nats_server.url) as bench:
        settings = settings_for(nats_server.url, tmp_path, [peer], ASSAY_ANALYZER_OUTAGE_S="60")
        async with running_orchestrator(settings):
            request = await bench.request("static")
            await bench.events.until(lambda: bool(bench.events.of(request.task.id)), 10, "not started")
            await asyncio.sleep(2.0)  # several probes see it draining
            assert peer.analyzed == [] and peer.health_requests >= 2
            peer.draining = False  # restarted
            ending = terminal_of(await bench.events.terminal(request.task.id, timeout_s=15))
    assert isinstance(ending, TaskCompleted) and ending.status == "completed"
    assert len(peer.analyzed) == 1


async def test_a_task_waiting_for_an_analyzer_can_be_cancelled_before_it_starts(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["result"])  # down for the whole test
    settings = settings_for(nats_server.url, tmp_path, [peer], ASSAY_ANALYZER_OUTAGE_S="60")
    async with bench_for(nats_server.url) as bench, running_orchestrator(settings):
        first = await bench.request("static")  # its run notices the outage
        await bench.events.until(lambda: bool(bench.events.of(first.task.id)), 10, "first task not started")
        waiting = await bench.request("static")  # taken during the outage: waits before it starts

        cancel = CancelRequest(task_id=waiting.task.id, reason="no longer wanted")
        # Core NATS reaches only a task already registered; sent again until it lands (no marker: a marker would
        # stop the task before it waits at all).
        for _ in range(100):
            await bench.nc.publish(cancel_subject(waiting.task.id), encode(cancel))
            if bench.events.of(waiting.task.id):
                break
            await asyncio.sleep(0.1)
        events = await bench.events.terminal(waiting.task.id, timeout_s=10)
    assert [kind(item.event) for item in events] == ["cancelled"]  # never started
    ending = terminal_of(events)
    assert isinstance(ending, TaskCancelled) and ending.reason == "no longer wanted"
