"""One task through the orchestrator against scripted analyzers: what it publishes for each way a run can end.

Real nats-server, real WebSocket peers on loopback; events are read back from ASSAY_EVENTS."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import msgspec

from services.orchestrator.runner import service_reason
from shared.jetstream.natsd import EmbeddedNats
from shared.wire.messages import ServiceFinished, TaskCompleted, TaskFailed, TaskProgress, TaskStarted, encode
from shared.wire.protocol import ServiceResult
from shared.wire.tasks import TaskRef, new_task_id
from tests.support.orchestrator import (
    RUNNING_ELSEWHERE,
    ScriptedAnalyzer,
    analyzers,
    bench_for,
    kind,
    orchestrated,
    running_orchestrator,
    sample_result,
    settings_for,
    terminal_of,
)


async def test_happy_path_publishes_started_service_completed_with_findings(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["result"])
    async with analyzers(peer), bench_for(nats_server.url) as bench:
        settings = settings_for(nats_server.url, tmp_path, [peer])
        async with running_orchestrator(settings, worker="host-a:42"):
            request = await bench.request("security")
            events = await bench.events.terminal(request.task.id)
            await bench.settled()
    kinds = [kind(item.event) for item in events]
    # A run shorter than the progress interval (0.5 s) has no progress event: its service event says it all.
    assert kinds == ["started", "service", "completed"], kinds
    started = events[0].event
    assert isinstance(started, TaskStarted)
    assert started.services == ["static"] and started.worker == "host-a:42"
    assert started.tools == ["bandit", "semgrep", "detect-secrets", "pip-audit", "npm-audit"]
    service = events[-2].event
    assert isinstance(service, ServiceFinished) and service.status == "success"
    assert service.result is not None and service.artifact is None
    assert service.result.findings == sample_result("static").findings
    completed = terminal_of(events)
    assert isinstance(completed, TaskCompleted)
    assert completed.status == "completed" and completed.services == ["static"] and completed.reason is None
    # The analyzer got one request, under the task's run id, for the tools the plan gave it.
    assert [frame.id for frame in peer.analyzed] == [f"{request.task.id}:static"]
    assert peer.analyzed[0].tools == started.tools and peer.analyzed[0].task == request.task
    # Publish-side de-duplication: every event's Nats-Msg-Id is its event id.
    assert all(item.headers["Nats-Msg-Id"] == item.event.event_id for item in events)


async def test_frame_with_a_foreign_id_is_ignored_never_taken_as_the_answer(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["foreign"])
    async with orchestrated(nats_server.url, tmp_path, [peer]) as bench:
        request = await bench.request("static")
        events = await bench.events.terminal(request.task.id)
    services = [item.event for item in events if isinstance(item.event, ServiceFinished)]
    assert len(services) == 1 and services[0].result is not None
    messages = [finding.message for finding in services[0].result.findings]
    assert messages == ["real finding 1", "real finding 2"]  # not the FOREIGN result sent first
    assert isinstance(terminal_of(events), TaskCompleted)


async def test_error_frame_fails_the_service_and_the_task_with_the_analyzers_message(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["error"])
    async with orchestrated(nats_server.url, tmp_path, [peer]) as bench:
        request = await bench.request("static")
        events = await bench.events.terminal(request.task.id)
        await bench.settled()
    service = next(item.event for item in events if isinstance(item.event, ServiceFinished))
    assert service.status == "failed" and service.result is None
    assert service.error == "analyzer static answered internal: bandit crashed with exit code 2"
    failed = terminal_of(events)
    assert isinstance(failed, TaskFailed)
    assert "bandit crashed with exit code 2" in failed.reason and failed.services == ["static"]


async def test_silent_analyzer_fails_the_service_after_the_heartbeat_timeout(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["silent"])
    async with orchestrated(nats_server.url, tmp_path, [peer]) as bench:
        request = await bench.request("static")
        await peer.analyze_received.wait()
        asked = asyncio.get_running_loop().time()
        events = await bench.events.terminal(request.task.id, timeout_s=6)
        waited = asyncio.get_running_loop().time() - asked
        await asyncio.wait_for(peer.cancel_received.wait(), 2)  # told to stop, in case it was only slow
    service = next(item.event for item in events if isinstance(item.event, ServiceFinished))
    assert service.status == "failed" and service.error == "analyzer static sent nothing for 1.5 s"
    failed = terminal_of(events)
    assert isinstance(failed, TaskFailed) and "sent nothing for 1.5 s" in failed.reason
    assert 1.4 <= waited < 3.0, waited


async def test_dropped_connection_is_retried_once_on_the_other_replica_with_the_same_id(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # The busier replica is chosen only for the retry: the idle one takes the run first, then drops it.
    dropping = ScriptedAnalyzer("static", ["drop"], active_runs=0)
    second = ScriptedAnalyzer("static", ["result"], active_runs=3)
    async with orchestrated(nats_server.url, tmp_path, [dropping, second]) as bench:
        request = await bench.request("static")
        events = await bench.events.terminal(request.task.id)
        await asyncio.sleep(0.3)  # a second `service` event would have arrived by now
    run_id = f"{request.task.id}:static"
    assert [frame.id for frame in dropping.analyzed] == [run_id]
    assert [frame.id for frame in second.analyzed] == [run_id]
    services = [
        item.event for item in bench.events.of(request.task.id) if isinstance(item.event, ServiceFinished)
    ]
    assert len(services) == 1 and services[0].status == "success"
    assert services[0].result is not None and len(services[0].result.findings) == 2  # used once, not doubled
    assert isinstance(terminal_of(events), TaskCompleted)


async def test_comprehensive_run_with_one_failing_service_is_partial_with_the_reason(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peers = [
        ScriptedAnalyzer("static", ["result"]),
        ScriptedAnalyzer("dynamic", ["error"]),
        ScriptedAnalyzer("performance", ["result"]),
        ScriptedAnalyzer("ai", ["result"]),
    ]
    async with orchestrated(nats_server.url, tmp_path, peers) as bench:
        request = await bench.request("comprehensive", target_urls=[RUNNING_ELSEWHERE])
        events = await bench.events.terminal(request.task.id)
    assert all(len(peer.analyzed) == 1 for peer in peers)  # all four ran
    services = {item.event.service: item.event for item in events if isinstance(item.event, ServiceFinished)}
    assert set(services) == {"static", "dynamic", "performance", "ai"}
    assert services["dynamic"].status == "failed"
    assert {name for name, event in services.items() if event.status == "success"} == {
        "static",
        "performance",
        "ai",
    }
    ending = terminal_of(events)
    assert isinstance(ending, TaskCompleted) and ending.status == "partial"
    assert (
        ending.reason == "dynamic failed: analyzer dynamic answered internal: bandit crashed with exit code 2"
    )
    assert sorted(ending.services) == ["ai", "dynamic", "performance", "static"]


async def test_service_with_a_partial_result_makes_the_task_partial(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["partial"])
    async with orchestrated(nats_server.url, tmp_path, [peer]) as bench:
        request = await bench.request("static")
        events = await bench.events.terminal(request.task.id)
    ending = terminal_of(events)
    assert isinstance(ending, TaskCompleted) and ending.status == "partial"
    assert ending.reason == "static partial: bandit failed"


def test_a_partial_service_without_an_error_names_its_partial_tools_in_the_reason() -> None:
    """A dynamic check stopped by its budget is `partial` with no service error: the task's reason said "no reason
    given"."""
    result = sample_result("dynamic", status="partial")
    stopped = msgspec.structs.replace(result.tools[0], status="partial", reason="stopped before …")
    result = msgspec.structs.replace(result, tools=[stopped], error=None)
    task = TaskRef(id=new_task_id(), model_slug="m", app_number=1, analysis_type="dynamic")
    event = ServiceFinished(task=task, service="dynamic", status="partial", result=result)
    assert service_reason(event) == "dynamic partial: dynamic-tool partial"


async def test_large_result_travels_through_the_object_store_and_the_event_carries_a_reference(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["large"])
    async with orchestrated(nats_server.url, tmp_path, [peer]) as bench:
        request = await bench.request("static")
        events = await bench.events.terminal(request.task.id, timeout_s=20)
        service = next(item.event for item in events if isinstance(item.event, ServiceFinished))
        assert service.result is None and service.artifact is not None
        assert len(encode(service)) < bench.nc.max_payload // 2
        ref = service.artifact
        assert (ref.bucket, ref.name) == ("assay-artifacts", f"{request.task.id}/static.json")
        stored = await (await bench.js.object_store(ref.bucket)).get(ref.name)
    data = stored.data or b""
    assert len(data) == ref.size > bench.nc.max_payload // 2
    assert hashlib.sha256(data).hexdigest() == ref.sha256
    result = msgspec.json.decode(data, type=ServiceResult)
    assert result.raw_outputs["bandit"] == "x" * peer.large_bytes
    assert result.findings == sample_result("static").findings
    assert isinstance(terminal_of(events), TaskCompleted)


async def test_analyzer_progress_is_throttled_to_about_two_events_a_second(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["talkative"])  # 100 progress frames in about a second
    async with orchestrated(nats_server.url, tmp_path, [peer]) as bench:
        request = await bench.request("static")
        events = await bench.events.terminal(request.task.id)
    progress = [item.event for item in events if isinstance(item.event, TaskProgress)]
    assert 1 <= len(progress) <= 3, len(progress)
    assert progress[0].service == "static" and progress[0].tool == "bandit"
    assert 0 < progress[0].percent < 100  # the first comes once the run has gone on for the interval


async def test_an_outage_past_its_limit_fails_the_service_naming_the_urls_and_the_limit(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    nobody = ScriptedAnalyzer("static", ["result"])  # never started: nothing listens on its port
    settings = settings_for(nats_server.url, tmp_path, [nobody], ASSAY_ANALYZER_OUTAGE_S="1")
    async with bench_for(nats_server.url) as bench, running_orchestrator(settings):
        request = await bench.request("static")
        events = await bench.events.terminal(request.task.id)
    failed = terminal_of(events)
    assert isinstance(failed, TaskFailed)
    assert failed.reason == (
        f"static failed: no healthy static analyzer at {nobody.url}; "
        "none became healthy within 1 s (ASSAY_ANALYZER_OUTAGE_S)"
    )


async def test_task_deadline_fails_the_service_and_stops_the_analyzer(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["hold"])  # beats forever, never answers
    async with orchestrated(nats_server.url, tmp_path, [peer]) as bench:
        request = await bench.request("static", deadline_s=1.0)
        events = await bench.events.terminal(request.task.id, timeout_s=5)
    assert peer.analyzed[0].deadline_s <= 1.0  # the analyzer is told how long it has
    assert [frame.id for frame in peer.cancels] == [f"{request.task.id}:static"]
    service = next(item.event for item in events if isinstance(item.event, ServiceFinished))
    assert (
        service.status == "failed"
        and service.error == "the task's deadline of 1 s passed before static finished"
    )
    assert isinstance(terminal_of(events), TaskFailed)


async def test_a_long_run_publishes_progress_regularly_even_when_the_analyzer_reports_none(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peer = ScriptedAnalyzer("static", ["hold"])  # one progress frame, then heartbeats only
    # The pulse runs at a third of the persister's stale-task limit (at most 30 s): 0.5 s here.
    settings = settings_for(nats_server.url, tmp_path, [peer], ASSAY_STALE_TASK_S="1.5")
    async with analyzers(peer), bench_for(nats_server.url) as bench, running_orchestrator(settings):
        request = await bench.request("static")

        def pulses() -> list[TaskProgress]:
            return [
                item.event
                for item in bench.events.of(request.task.id)
                if isinstance(item.event, TaskProgress) and item.event.message == "running: static"
            ]

        await bench.events.until(lambda: len(pulses()) >= 3, 3.0, "fewer than three pulses")
    assert all(pulse.service == "static" and pulse.stage == "running" for pulse in pulses())


async def test_task_progress_is_the_mean_of_its_services_and_never_goes_back(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peers = [
        ScriptedAnalyzer("static", ["chatty"]),  # reports its way to 100 % and finishes
        ScriptedAnalyzer("dynamic", ["hold"]),  # the other three stay at their first frame
        ScriptedAnalyzer("performance", ["hold"]),
        ScriptedAnalyzer("ai", ["hold"]),
    ]
    settings = settings_for(nats_server.url, tmp_path, peers, ASSAY_STALE_TASK_S="1.5")
    async with analyzers(*peers), bench_for(nats_server.url) as bench, running_orchestrator(settings):
        request = await bench.request("comprehensive", target_urls=[RUNNING_ELSEWHERE])

        def progress() -> list[TaskProgress]:
            return [
                item.event
                for item in bench.events.of(request.task.id)
                if isinstance(item.event, TaskProgress)
            ]

        def pulses_after_static() -> list[TaskProgress]:
            finished = [
                item.event
                for item in bench.events.of(request.task.id)
                if isinstance(item.event, ServiceFinished)
            ]
            return [p for p in progress() if p.message.startswith("running:")] if finished else []

        await bench.events.until(
            lambda: len(pulses_after_static()) >= 2, 5.0, "no pulse after static finished"
        )
    percents = [event.percent for event in progress()]
    assert percents == sorted(percents), percents
    assert pulses_after_static()[-1].percent == 25.0  # static done, three services at 0 %
