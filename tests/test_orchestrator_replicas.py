"""Choosing an analyzer replica by asking real WebSocket peers for their health."""

from __future__ import annotations

import pytest

from services.orchestrator.replicas import NoHealthyReplica, ReplicaChooser, ask_health
from tests.support.orchestrator import ScriptedAnalyzer, analyzers


async def test_the_replica_with_fewest_active_runs_is_chosen_and_equals_take_turns() -> None:
    busy = ScriptedAnalyzer("static", ["result"], active_runs=4)
    idle_a = ScriptedAnalyzer("static", ["result"], active_runs=1)
    idle_b = ScriptedAnalyzer("static", ["result"], active_runs=1)
    async with analyzers(busy, idle_a, idle_b):
        chooser = ReplicaChooser()
        urls = [busy.url, idle_a.url, idle_b.url]
        picks = [await chooser.choose("static", urls) for _ in range(4)]
    assert picks == [idle_a.url, idle_b.url, idle_a.url, idle_b.url]
    assert busy.health_requests == 4  # asked every time, never chosen


async def test_unreachable_and_wrong_replicas_are_skipped_and_avoid_is_honoured() -> None:
    down = ScriptedAnalyzer("static", ["result"])  # never started
    wrong = ScriptedAnalyzer("dynamic", ["result"])  # answers, but is another analyzer
    first = ScriptedAnalyzer("static", ["result"])
    second = ScriptedAnalyzer("static", ["result"], active_runs=9)
    async with analyzers(wrong, first, second):
        chooser = ReplicaChooser(health_timeout_s=1.0)
        urls = [down.url, wrong.url, first.url, second.url]
        assert await chooser.choose("static", urls) == first.url
        assert await chooser.choose("static", urls, avoid=[first.url]) == second.url
        # With nothing else left, the avoided replica is asked again (a single replica may have restarted).
        assert await chooser.choose("static", [first.url], avoid=[first.url]) == first.url
        assert await ask_health(wrong.url, "static") is None
        found = await ask_health(second.url, "static")
    assert found is not None and found.report is not None and found.report.active_runs == 9


async def test_a_replica_slow_to_answer_is_taken_only_when_none_answered_in_time() -> None:
    slow = ScriptedAnalyzer("static", ["result"], health_delay_s=1.0)
    quick = ScriptedAnalyzer("static", ["result"], active_runs=5)
    async with analyzers(slow, quick):
        chooser = ReplicaChooser(health_timeout_s=0.3)
        assert await chooser.choose("static", [slow.url, quick.url]) == quick.url  # busier, but it answered
        assert await chooser.choose("static", [slow.url]) == slow.url  # reachable: busy, not broken
        found = await ask_health(slow.url, "static", 0.3)
    assert found is not None and found.report is None


async def test_no_healthy_replica_is_an_error_naming_the_urls() -> None:
    down_a = ScriptedAnalyzer("static", ["result"])
    down_b = ScriptedAnalyzer("static", ["result"])
    with pytest.raises(NoHealthyReplica) as raised:
        await ReplicaChooser(health_timeout_s=0.5).choose("static", [down_a.url, down_b.url])
    assert str(raised.value) == f"no healthy static analyzer at {down_a.url}, {down_b.url}"
