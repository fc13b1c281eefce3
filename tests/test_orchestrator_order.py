"""The load test never overlaps the dynamic checks on one app: in a comprehensive task the orchestrator starts the
performance analyzer only once the dynamic analyzer's run has ended (the checks change the app's state, and their
timing checks must not share it with the load); the other analyzers start at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shared.jetstream.natsd import EmbeddedNats
from shared.wire.messages import TaskCompleted
from tests.support.orchestrator import (
    ScriptedAnalyzer,
    analyzers,
    bench_for,
    running_orchestrator,
    settings_for,
    terminal_of,
)


async def test_performance_starts_after_dynamic_ends_and_the_others_at_once(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    peers = {
        "static": ScriptedAnalyzer("static", ["result"]),
        "dynamic": ScriptedAnalyzer("dynamic", ["talkative"]),  # about a second of progress, then its result
        "performance": ScriptedAnalyzer("performance", ["result"]),
        "ai": ScriptedAnalyzer("ai", ["result"]),
    }
    seen: dict[str, bool] = {}

    async def watch() -> None:
        await peers["performance"].analyze_received.wait()
        seen["dynamic ended first"] = all(run.done() for run in peers["dynamic"]._runs)
        seen["static started"] = peers["static"].analyze_received.is_set()

    async with analyzers(*peers.values()), bench_for(nats_server.url) as bench:
        settings = settings_for(nats_server.url, tmp_path, list(peers.values()))
        async with running_orchestrator(settings):
            watcher = asyncio.create_task(watch())
            request = await bench.request("comprehensive", target_urls=["http://127.0.0.1:9/"])
            events = await bench.events.terminal(request.task.id)
            await asyncio.wait_for(watcher, 5)
    completed = terminal_of(events)
    assert isinstance(completed, TaskCompleted) and completed.status == "completed"
    assert seen == {"dynamic ended first": True, "static started": True}
