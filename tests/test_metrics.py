"""`/metrics` of every service after real tasks: the counters and histogram counts match the tasks run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.wire import subjects
from shared.wire.messages import PRIORITIES
from tests.support.stack import Stack

REPO = Path(__file__).resolve().parent.parent
APPS = REPO / "generated" / "apps"
TOOLS = ["bandit", "radon"]
APPS_RUN = [("openai_codex-mini", 1), ("openai_codex-mini", 2)]

Samples = list[tuple[str, dict[str, str], float]]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("metrics"), apps_dir=APPS, analyzers={"static": 1})
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def finished(stack: Stack) -> list[dict[str, Any]]:
    """Two static analyses narrowed to two tools, run to their end."""
    ids = [
        stack.submit(model_slug=model, app_number=app, analysis_type="static", tools=TOOLS)
        for model, app in APPS_RUN
    ]
    return [stack.wait_terminal(task_id) for task_id in ids]


def scrape(stack: Stack, name: str) -> Samples:
    response = httpx.get(stack.metrics_url(name), headers=stack.headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(
        value
        for sample, found, value in samples
        if sample == name and all(found.get(key) == wanted for key, wanted in labels.items())
    )


def series(samples: Samples, name: str, label: str) -> set[str]:
    return {found[label] for sample, found, _ in samples if sample == name and label in found}


def test_gateway_counts_accepted_tasks_and_request_durations_by_route(
    stack: Stack, finished: list[dict[str, Any]]
) -> None:
    samples = scrape(stack, "gateway")
    assert total(samples, "assay_tasks_accepted_total", assay_analysis_type="static") == len(APPS_RUN)
    runs = total(
        samples,
        "http_server_request_duration_seconds_count",
        http_route="/api/analysis/run",
        http_response_status_code="202",
        http_request_method="POST",
    )
    assert runs == len(APPS_RUN)
    # Routes are templates, never raw paths: one series for every task's polling.
    polled = total(samples, "http_server_request_duration_seconds_count", http_route="/api/tasks/{task_id}")
    assert polled >= len(APPS_RUN)
    assert not any(
        re.search(r"task_[0-9a-f]{12}", route)
        for route in series(samples, "http_server_request_duration_seconds_count", "http_route")
    )


def test_persister_counts_ended_tasks_writes_fetches_and_watches_its_durables(
    stack: Stack, finished: list[dict[str, Any]]
) -> None:
    samples = scrape(stack, "persister")
    statuses = {task["status"] for task in finished}
    assert statuses == {"completed"}, stack.log_tail()
    ended = total(
        samples, "assay_tasks_ended_total", assay_task_status="completed", assay_analysis_type="static"
    )
    assert ended == len(APPS_RUN)
    assert total(samples, "assay_task_duration_seconds_count", assay_task_status="completed") == len(APPS_RUN)
    assert total(samples, "assay_task_duration_seconds_sum") > 0
    assert total(samples, "db_client_operation_duration_seconds_count", assay_write="outcome") == len(
        APPS_RUN
    )
    assert total(samples, "db_client_operation_duration_seconds_count", assay_write="request") == len(
        APPS_RUN
    )
    # Every message it consumed was in some fetch: the request, started, service and completed events at least.
    fetched = total(samples, "messaging_batch_message_count_sum")
    assert fetched >= 4 * len(APPS_RUN)
    assert total(samples, "messaging_message_body_size_bytes_count") == fetched
    assert total(samples, "messaging_message_body_size_bytes_sum") > 0
    durables = series(samples, "assay_consumer_pending", "messaging_consumer_group_name")
    assert durables == {
        subjects.PERSISTER_REQUESTS_DURABLE,
        subjects.PERSISTER_EVENTS_DURABLE,
        subjects.PERSISTER_ADVISORIES_DURABLE,
    }
    assert series(samples, "assay_consumer_redelivered", "messaging_consumer_group_name") == durables
    assert total(samples, "assay_dead_letters", messaging_destination_name=subjects.DLQ_STREAM) == 0
    assert series(samples, "assay_dead_letters", "messaging_destination_name") == {subjects.DLQ_STREAM}


def test_orchestrator_times_each_service_run_and_counts_healthy_replicas(
    stack: Stack, finished: list[dict[str, Any]]
) -> None:
    samples = scrape(stack, "orchestrator")
    assert total(samples, "assay_service_duration_seconds_count", assay_service="static") == len(APPS_RUN)
    assert total(samples, "assay_analyzer_replicas_healthy", assay_service="static") == 1
    durables = series(samples, "assay_consumer_pending", "messaging_consumer_group_name")
    assert durables == {subjects.orchestrator_durable(priority) for priority in PRIORITIES}


def test_analyzer_times_each_tool_run(stack: Stack, finished: list[dict[str, Any]]) -> None:
    samples = scrape(stack, "static-0")
    for tool in TOOLS:
        assert total(samples, "assay_tool_duration_seconds_count", assay_tool=tool) == len(APPS_RUN)
    assert series(samples, "assay_tool_duration_seconds_count", "assay_tool") == set(TOOLS)


def test_paths_are_never_series_of_their_own(stack: Stack) -> None:
    for index in range(3):
        httpx.get(f"{stack.gateway_url}/no/such/path/{index}", headers=stack.headers, timeout=10)
        httpx.get(f"{stack.gateway_url}/api/tasks/task_00000000000{index}", headers=stack.headers, timeout=10)
    samples = scrape(stack, "gateway")
    routes = series(samples, "http_server_request_duration_seconds_count", "http_route")
    assert not any(route.startswith("/no/") for route in routes)
    unknown = total(
        samples,
        "http_server_request_duration_seconds_count",
        http_route="/api/tasks/{task_id}",
        http_response_status_code="404",
    )
    assert unknown == 3


def test_the_gateways_metrics_need_a_token(stack: Stack) -> None:
    assert httpx.get(stack.metrics_url("gateway"), timeout=10).status_code == 401


def test_a_listener_answers_only_get_metrics(stack: Stack) -> None:
    response = httpx.get(stack.metrics_url("persister").replace("/metrics", "/other"), timeout=10)
    assert response.status_code == 404
