"""OTLP proven: the real stack exports to a receiver of the test's own, which finds each task's complete trace
(gateway, orchestrator, the analyzer, persister; no orphan; tool findings adding up) and metrics counting the tasks;
the gateway, given the receiver's Jaeger-compatible query API, serves each task's trace from that store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from tests.support.otlp import OtlpReceiver, ReceivedSpan, attributes
from tests.support.stack import Stack

REPO = Path(__file__).resolve().parent.parent
APPS = REPO / "generated" / "apps"
TOOLS = ["bandit", "radon"]
APPS_RUN = [("openai_codex-mini", 1), ("openai_codex-mini", 2)]
SERVICES = {"gateway", "orchestrator", "analyzer-static", "persister"}


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[OtlpReceiver, list[dict[str, Any]], Stack]]:
    """Two tasks through a stack exporting over OTLP; the stack is stopped (its exporters flushed) before checking."""
    receiver = OtlpReceiver()
    receiver.start()
    stack = Stack(
        tmp_path_factory.mktemp("otlp"),
        apps_dir=APPS,
        analyzers={"static": 1},
        extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "ASSAY_TRACE_QUERY_URL": receiver.endpoint,
        },
    )
    stack.start()
    try:
        ids = [
            stack.submit(model_slug=model, app_number=app, analysis_type="static", tools=TOOLS)
            for model, app in APPS_RUN
        ]
        finished = [stack.wait_terminal(task_id) for task_id in ids]
    finally:
        stack.stop()
    assert not list(stack.trace_dir.glob("*.jsonl")), "with an OTLP endpoint no span file is written"
    yield receiver, finished, stack
    receiver.stop()


def spans_of(receiver: OtlpReceiver, trace_id: str) -> list[ReceivedSpan]:
    with receiver.received.lock:
        return [span for span in receiver.received.spans if span.trace_id == trace_id]


def test_each_task_has_one_complete_trace_across_the_services(
    run: tuple[OtlpReceiver, list[dict[str, Any]], Stack],
) -> None:
    receiver, finished, _stack = run
    for task in finished:
        assert task["status"] == "completed"
        assert task["findings_count"] > 0  # so that the sum below says something
        spans = spans_of(receiver, task["trace_id"])
        assert {span.service for span in spans} == SERVICES
        ids = {span.span_id for span in spans}
        roots = [span for span in spans if span.parent_span_id is None]
        assert [root.name for root in roots] == ["POST /api/analysis/run"]
        orphans = [span.name for span in spans if span.parent_span_id and span.parent_span_id not in ids]
        assert orphans == []
        tools = [span for span in spans if span.name.startswith("tool ")]
        assert sorted(span.name for span in tools) == sorted(f"tool {tool}" for tool in TOOLS)
        findings = sum(int(str(span.attributes["assay.tool.findings"])) for span in tools)
        assert findings == task["findings_count"]


def points(metric: Metric | None) -> list[tuple[dict[str, object], float]]:
    """(attributes, value) of each point of a cumulative sum, or (attributes, count) of a histogram."""
    assert metric is not None
    if metric.HasField("sum"):
        return [(attributes(list(p.attributes)), p.as_int or p.as_double) for p in metric.sum.data_points]
    return [(attributes(list(p.attributes)), p.count) for p in metric.histogram.data_points]


def counted(metric: Metric | None, **wanted: object) -> float:
    return sum(value for found, value in points(metric) if all(found.get(k) == v for k, v in wanted.items()))


def test_the_metrics_count_the_tasks_run(run: tuple[OtlpReceiver, list[dict[str, Any]], Stack]) -> None:
    receiver, finished, _stack = run
    received = receiver.received
    tasks = len(finished)
    assert (
        counted(received.last_metric("gateway", "assay.tasks.accepted"), **{"assay.analysis_type": "static"})
        == tasks
    )
    requests = received.last_metric("gateway", "http.server.request.duration")
    assert counted(requests, **{"http.route": "/api/analysis/run", "http.response.status_code": 202}) == tasks
    ended = received.last_metric("persister", "assay.tasks.ended")
    assert counted(ended, **{"assay.task.status": "completed"}) == tasks
    assert counted(received.last_metric("persister", "assay.task.duration")) == tasks
    assert (
        counted(received.last_metric("orchestrator", "assay.service.duration"), **{"assay.service": "static"})
        == tasks
    )
    tool_runs = received.last_metric("analyzer-static", "assay.tool.duration")
    for tool in TOOLS:
        assert counted(tool_runs, **{"assay.tool": tool}) == tasks


def test_the_trace_route_reads_each_tasks_trace_from_the_store(
    run: tuple[OtlpReceiver, list[dict[str, Any]], Stack],
) -> None:
    receiver, finished, stack = run
    stack.start()  # stopped by `run` to flush its exporters; the gateway answers from the receiver's store
    try:
        answers = [
            httpx.get(
                f"{stack.gateway_url}/api/tasks/{task['task_id']}/trace", headers=stack.headers, timeout=10
            )
            for task in finished
        ]
    finally:
        stack.stop()
    for task, answer in zip(finished, answers, strict=True):
        assert answer.status_code == 200, answer.text
        trace = answer.json()
        assert trace["trace_id"] == task["trace_id"]
        served = {(s["span_id"], s["parent_span_id"], s["name"], s["service"]) for s in trace["spans"]}
        stored = {
            (s.span_id, s.parent_span_id, s.name, s.service) for s in spans_of(receiver, task["trace_id"])
        }
        assert served == stored and {s["service"] for s in trace["spans"]} == SERVICES
        [root] = [s for s in trace["spans"] if s["parent_span_id"] is None]
        assert root["kind"] == "SERVER" and root["end_ns"] > root["start_ns"]
        tools = {
            s["name"]: s["attributes"]["assay.tool.findings"]
            for s in trace["spans"]
            if s["name"].startswith("tool ")
        }
        assert sum(tools.values()) == task["findings_count"]
