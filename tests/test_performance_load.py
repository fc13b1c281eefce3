"""The performance analyzer's load tool, run as a real service process against a real sample backend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect

from services.analyzers.performance.load import Samples, generate_load
from services.analyzers.performance.stats import percentile, summarize
from services.analyzers.running_app.client import http_client
from shared.operations.target_policy import TargetPolicy
from shared.wire.protocol import (
    AnalyzeFrame,
    CancelFrame,
    HealthFrame,
    HealthReport,
    ProgressFrame,
    ResultFrame,
    decode_analyzer_frame,
    encode_frame,
)
from tests.support.analyzers import AUTH, analyze_frame, result_async, start_analyzer, start_backend, stop
from tests.support.ports import free_port


@pytest.fixture(scope="module")
def performance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Ceilings far above what these tests ask for: the cancel and timeout tests need a run that goes on.
    ceilings = {"ASSAY_LOAD_MAX_REQUESTS": "10000000", "ASSAY_LOAD_MAX_DURATION_S": "3600"}
    url, process = start_analyzer("performance", tmp_path_factory.mktemp("performance"), extra_env=ceilings)
    yield url
    stop(process)


def load(request_id: str, targets: list[str], **options: object) -> AnalyzeFrame:
    return analyze_frame(request_id, app=1, target_urls=targets, options={"load": options})


def test_percentile_against_known_values() -> None:
    one_to_ten = [float(n) for n in range(10, 0, -1)]  # unsorted on purpose
    assert percentile(one_to_ten, 0) == 1.0
    assert percentile(one_to_ten, 50) == pytest.approx(5.5)
    assert percentile(one_to_ten, 90) == pytest.approx(9.1)
    assert percentile(one_to_ten, 99) == pytest.approx(9.91)
    assert percentile(one_to_ten, 100) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 25) == pytest.approx(1.75)
    assert percentile([42.0], 99) == 42.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 101)


async def test_metrics_hold_percentiles_and_status_counts_per_url(performance: str, notes_app: str) -> None:
    result = await result_async(
        performance, load("m", [notes_app], requests=60, concurrency=6, paths=["/api/health"])
    )
    (run,) = result.tools
    assert run.status == "success" and run.findings_count == 0
    metrics = result.metrics["load"]
    assert metrics["status"] == "ok" and metrics["paths_from"] == "options"
    figures = metrics["urls"][f"{notes_app}/api/health"]
    assert figures["requests"] == figures["completed"] == 60
    assert figures["status_counts"] == {"200": 60} and sum(figures["status_counts"].values()) == 60
    latency = figures["latency_ms"]
    assert 0 < latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert figures["error_rate"] == 0.0 and figures["throughput_rps"] > 0 and figures["bytes"] > 0
    assert figures["stopped_by"] == "requests"
    assert run.command[:4] == ["python", "-m", "services.analyzers.performance.replay", "load"]


async def test_crossed_thresholds_yield_findings(performance: str, notes_app: str) -> None:
    frame = load(
        "t",
        [notes_app],
        requests=30,
        concurrency=5,
        paths=["/api/health", "/no-such-page"],
        thresholds={"p99_ms": 0.001},
    )
    result = await result_async(performance, frame)
    found = sorted((f.rule_id, f.severity, f.path) for f in result.findings)
    assert found == [
        ("error-rate-exceeded", "high", "backend:/no-such-page"),
        ("p99-latency-exceeded", "medium", "backend:/api/health"),
        ("p99-latency-exceeded", "medium", "backend:/no-such-page"),
    ]
    error_rate = next(f for f in result.findings if f.rule_id == "error-rate-exceeded")
    assert "30 of 30 requests failed (100.0%)" in error_rate.message
    assert result.metrics["load"]["urls"][f"{notes_app}/no-such-page"]["status_counts"] == {"404": 30}
    assert result.tools[0].findings_count == 3


async def test_paths_default_to_the_surface_routes_that_answer(performance: str, notes_app: str) -> None:
    result = await result_async(performance, load("p", [notes_app], requests=5))
    metrics = result.metrics["load"]
    assert metrics["paths_from"] == "surface"
    # requirements.json's GET endpoints first, then the GET routes of the source without parameters
    assert list(metrics["urls"]) == [
        f"{notes_app}{path}" for path in ("/api/health", "/api/notes", "/api/notes/1", "/", "/.env")
    ]
    assert all(status == 200 for status in metrics["paths_tried"].values())


async def test_a_route_the_app_does_not_have_is_not_loaded_nor_counted_as_its_errors(
    performance: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    todo, process = start_backend("openai_codex-mini/app2", tmp_path_factory.mktemp("todo-load"))
    try:
        result = await result_async(
            performance, analyze_frame("404", app=2, target_urls=[todo], options={"load": {"requests": 5}})
        )
    finally:
        stop(process)
    metrics = result.metrics["load"]
    assert (
        metrics["paths_tried"][f"{todo}/api/stats"] == 404
    )  # requirements.json promises it; the app lacks it
    assert f"{todo}/api/stats" not in metrics["urls"] and metrics["urls"]
    assert not [f for f in result.findings if f.rule_id == "error-rate-exceeded"]


async def test_unreachable_target_is_reported_not_crashed(performance: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = await result_async(performance, load("u", [dead]), timeout_s=10)
    assert time.monotonic() - started < 5
    (run,) = result.tools
    assert run.status == "skipped" and (run.reason or "").startswith(f"targets_unreachable: {dead}")
    assert result.metrics["load"]["status"] == "targets_unreachable"
    assert result.findings == []


async def test_invalid_options_fail_the_tool_with_the_reason(performance: str, notes_app: str) -> None:
    result = await result_async(performance, load("bad", [notes_app], concurrency=0))
    (run,) = result.tools
    assert (
        run.status == "failed"
        and "invalid options.load" in (run.reason or "")
        and "concurrency" in (run.reason or "")
    )
    assert result.status == "failed"


async def test_cancel_during_a_long_run_ends_it_within_two_seconds(performance: str, notes_app: str) -> None:
    frame = load("long", [notes_app], requests=1_000_000, duration_s=600, paths=["/api/notes"])
    async with connect(performance, additional_headers=AUTH) as ws:
        await ws.send(encode_frame(frame))
        async with asyncio.timeout(10):
            while not isinstance(received := decode_analyzer_frame(await ws.recv()), ProgressFrame):
                pass
        assert received.stage == "started"
        await asyncio.sleep(1.0)  # well into the run
        cancelled_at = time.monotonic()
        await ws.send(encode_frame(CancelFrame(id="long")))
        async with asyncio.timeout(2):
            while not isinstance(received := decode_analyzer_frame(await ws.recv()), ResultFrame):
                pass
        assert time.monotonic() - cancelled_at < 2
        # A cancelled run answers with what it kept: the load test had not finished, so it is recorded cancelled.
        assert received.id == "long" and received.result.status == "cancelled"
        assert [(run.tool, run.status) for run in received.result.tools] == [("load", "cancelled")]
        await ws.send(encode_frame(HealthFrame(id="after")))
        async with asyncio.timeout(2):
            while not isinstance(received := decode_analyzer_frame(await ws.recv()), HealthReport):
                pass
        assert received.active_runs == 0  # the run is gone, not lingering behind the error frame


async def test_generator_stops_at_the_duration_cap(notes_app: str) -> None:
    samples = Samples(url=f"{notes_app}/api/health")
    policy = TargetPolicy(app_ports=frozenset(), allow=("127.0.0.1",))
    async with http_client(policy, timeout_s=5, connections=4) as client:
        started = time.monotonic()
        await generate_load(client, samples, requests=1_000_000, concurrency=4, duration_s=0.5)
        took = time.monotonic() - started
    # the requests in flight at the cap finish first (on a loaded machine one may take a second); a million do not
    assert took < 3.0
    figures = summarize(samples)
    assert figures.stopped_by == "duration"
    assert 0 < figures.requests < 1_000_000 and figures.completed == figures.requests


async def test_tool_timeout_ends_the_run_with_the_figures_so_far(performance: str, notes_app: str) -> None:
    frame = load("slow", [notes_app], requests=1_000_000, duration_s=600, paths=["/api/health"])
    frame.options["timeouts"] = {"load": 1.0}
    started = time.monotonic()
    result = await result_async(performance, frame, timeout_s=10)
    assert time.monotonic() - started < 4
    (run,) = result.tools
    assert run.status == "timeout" and run.reason == "load did not finish within 1.0 s"
    assert result.metrics["load"]["status"] == "timeout"
    figures = result.metrics["load"]["urls"][f"{notes_app}/api/health"]
    assert 0 < figures["requests"] < 1_000_000 and figures["latency_ms"]["p99"] is not None
