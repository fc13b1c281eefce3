"""The persister end to end in-process: real nats-server, real SQLite file, real result folders.

Messages are published with nats-py to the real streams, as the gateway and the orchestrator publish them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select

from services.persister import staging
from services.persister.handlers import missing_service_wait_s
from shared.jetstream.natsd import EmbeddedNats
from shared.jetstream.streams import artifacts_bucket
from shared.results.findings import SEVERITIES
from shared.store.database import sessions
from shared.store.models import ServiceRun
from shared.wire.messages import ArtifactRef, TaskFailed, new_event_id
from shared.wire.subjects import ARTIFACTS_BUCKET, EVENTS_STREAM, PERSISTER_EVENTS_DURABLE, event_subject
from tests.support.contract import PRIMARY_KEYS, RESULTS_KEYS, SUMMARY_KEYS
from tests.support.persister import (
    APP,
    MODEL,
    Harness,
    eventually,
    expected_folder_name,
    files_under,
    publish_scenario,
    read_json,
    result_folder,
    running_persister,
    scenario,
    service_result,
    sha256_of,
)

METADATA_KEYS = {
    "priority",
    "tools",
    "services",
    "started_at",
    "finished_at",
    "duration_s",
    "status_reason",
    "worker",
    "assay_version",
}
TOOL_RECORD_KEYS = {
    "tool",
    "status",
    "version",
    "command",
    "exit_code",
    "duration_s",
    "files_analyzed",
    "findings_count",
    "reason",
    "reused_from",
    "files_reused",
    "service",
}


@pytest.fixture
async def harness(nats_server: EmbeddedNats, database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_persister(nats_server.url, database_url, tmp_path) as running:
        yield running


def app_folders(harness: Harness) -> list[Path]:
    return sorted((harness.results_dir / MODEL / f"app{APP}").iterdir())


async def test_happy_path_records_every_finding_and_writes_a_complete_folder(harness: Harness) -> None:
    case = scenario()  # 250 findings: more than any cap the old system applied
    task_id = case.request.task.id
    await publish_scenario(harness, case)

    task = await harness.wait_status(task_id, "completed")
    assert task.status_reason is None
    assert task.trace_id == case.trace_id
    assert task.worker == "test:1"
    assert task.started_at is not None and task.finished_at is not None
    assert task.findings_count == 250
    assert task.severity_breakdown == {level: 50 for level in SEVERITIES}
    folder_name = expected_folder_name(task_id, "security", case.request.occurred_at)
    assert task.result_dir == f"{MODEL}/app{APP}/{folder_name}"
    assert await harness.counts(task_id) == {"service_runs": 1, "tool_runs": 3, "findings": 250}

    folder = result_folder(harness, task)
    primary = f"{MODEL}_app{APP}_{task_id}.json"
    assert files_under(folder) == {
        primary,
        "services/static.json",
        "consolidated.sarif.json",
        "manifest.json",
    }

    document = read_json(folder / primary)
    assert set(document) == PRIMARY_KEYS
    assert (document["task_id"], document["model_slug"], document["app_number"]) == (task_id, MODEL, APP)
    assert document["trace_id"] == case.trace_id
    assert METADATA_KEYS <= set(document["metadata"])
    assert document["metadata"]["worker"] == "test:1"
    results = document["results"]
    assert set(results) == RESULTS_KEYS
    assert len(results["findings"]) == 250
    assert {finding["service"] for finding in results["findings"]} == {"static"}
    assert results["tools_used"] == ["bandit", "ruff"]
    assert set(results["tool_results"]) == {"bandit", "ruff", "semgrep"}
    assert all(set(record) == TOOL_RECORD_KEYS for record in results["tool_results"].values())
    assert results["tool_results"]["bandit"]["command"] == ["bandit", "-r", "-f", "json", "."]
    assert results["tool_results"]["semgrep"]["status"] == "skipped"
    assert results["tool_results"]["semgrep"]["reason"]
    assert results["raw_outputs"] == {"bandit": "b" * 64, "ruff": "r" * 64}
    assert results["success"] is True
    assert set(document["summary"]) == SUMMARY_KEYS
    assert document["summary"] == results["summary"]
    assert document["summary"]["total_findings"] == 250
    assert document["summary"]["services_executed"] == 1
    assert document["summary"]["tools_executed"] == 2
    assert document["summary"]["status"] == "completed"
    assert document["summary"]["severity_breakdown"] == {level: 50 for level in SEVERITIES}
    assert document["summary"]["findings_by_tool"] == {"bandit": 125, "ruff": 125}

    service = read_json(folder / "services" / "static.json")
    assert service["status"] == "success" and service["error"] is None
    assert len(service["findings"]) == 250 and service["sarif"]["runs"] and service["raw_outputs"]["bandit"]

    sarif = read_json(folder / "consolidated.sarif.json")
    assert sarif["version"] == "2.1.0"
    assert {run["tool"]["driver"]["name"] for run in sarif["runs"]} == {"bandit", "ruff"}
    assert sum(len(run["results"]) for run in sarif["runs"]) == 250

    manifest = read_json(folder / "manifest.json")
    assert manifest["primary_result"] == primary
    assert (manifest["task_id"], manifest["trace_id"]) == (task_id, case.trace_id)
    assert {entry["path"] for entry in manifest["files"]} == files_under(folder) - {"manifest.json"}
    for entry in manifest["files"]:
        assert entry["sha256"] == sha256_of(folder / entry["path"]), entry["path"]
        assert entry["size"] == (folder / entry["path"]).stat().st_size

    await staging_removed(harness, task_id)
    assert [path.name for path in app_folders(harness)] == [folder_name]  # no `.tmp-` left behind


async def test_service_and_completed_delivered_twice_leave_one_row_set_and_one_folder(
    harness: Harness,
) -> None:
    case = scenario(result=service_result(count=120))
    task_id = case.request.task.id
    again = dataclasses.replace(
        case,
        service=msgspec.structs.replace(case.service, event_id=new_event_id()),
        completed=msgspec.structs.replace(case.completed, event_id=new_event_id()),
    )
    await harness.publish_request(case.request, case.parent)
    await harness.publish_event(case.started, case.parent)
    await harness.publish_event(case.service, case.parent)
    await harness.publish_event(again.service, case.parent)  # a retried orchestrator: same result, new id
    await harness.drained()
    assert await harness.counts(task_id) == {"service_runs": 1, "tool_runs": 3, "findings": 120}
    async with sessions(harness.engine)() as session:  # the second outcome replaced the first
        assert await session.scalar(select(ServiceRun.event_id).where(ServiceRun.task_id == task_id)) == (
            again.service.event_id
        )
    staged = (await staged_outcomes(harness, task_id))["static"]  # and so did its staged copy
    assert staged is not None and staging.decode(staged).event_id == again.service.event_id
    assert staging.decode(staged).result == case.service.result
    await harness.publish_event(case.completed, case.parent)
    await harness.publish_event(again.completed, case.parent)
    await harness.wait_status(task_id, "completed")
    # The same ids once more, as they arrive beyond JetStream's two-minute duplicate window (no Nats-Msg-Id).
    for event in (case.service, case.completed, again.service, again.completed):
        await harness.publish_event(event, case.parent, dedup=False)
    await harness.drained()

    assert await harness.counts(task_id) == {"service_runs": 1, "tool_runs": 3, "findings": 120}
    task = await harness.task(task_id)
    assert task is not None and task.status == "completed" and task.findings_count == 120
    assert len(app_folders(harness)) == 1
    assert (
        len(
            read_json(result_folder(harness, task) / f"{MODEL}_app{APP}_{task_id}.json")["results"][
                "findings"
            ]
        )
        == 120
    )
    await staging_removed(harness, task_id)


async def test_large_result_is_read_back_from_the_object_store(harness: Harness) -> None:
    # 10 MB of raw output: above the 8 MB max payload
    big = service_result(count=1000, raw_size=5 * 1024 * 1024)
    case = scenario(result=big)
    task_id = case.request.task.id
    data = msgspec.json.encode(big)
    assert len(data) > harness.client.max_payload
    name = f"{task_id}/static.json"
    await (await artifacts_bucket(harness.js)).put(name, data)
    reference = ArtifactRef(
        bucket=ARTIFACTS_BUCKET, name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )
    case = dataclasses.replace(
        case, service=msgspec.structs.replace(case.service, result=None, artifact=reference)
    )
    await publish_scenario(harness, case)

    task = await harness.wait_status(task_id, "completed", timeout_s=30)
    assert await harness.counts(task_id) == {"service_runs": 1, "tool_runs": 3, "findings": 1000}
    document = read_json(result_folder(harness, task) / f"{MODEL}_app{APP}_{task_id}.json")
    assert len(document["results"]["findings"]) == 1000
    assert document["results"]["raw_outputs"]["bandit"] == "b" * (5 * 1024 * 1024)


async def test_completed_before_its_service_event_still_ends_with_a_complete_folder(harness: Harness) -> None:
    case = scenario()
    task_id = case.request.task.id
    await harness.publish_request(case.request, case.parent)
    await harness.publish_event(case.started, case.parent)
    await harness.publish_event(case.completed, case.parent)  # the terminal event first …

    async def terminal_held_back() -> bool:  # delivered once and handed back to wait for its service event
        info = await harness.js.consumer_info(EVENTS_STREAM, PERSISTER_EVENTS_DURABLE)
        return bool(info.num_pending == 0 and (info.num_ack_pending or 0) >= 1)

    await eventually(terminal_held_back, 5, "the terminal event was not held back")
    await harness.publish_event(case.service, case.parent)  # … its service event after it

    task = await harness.wait_status(task_id, "completed", "partial")
    assert task.status == "completed" and task.status_reason is None
    folder = result_folder(harness, task)
    assert "services/static.json" in files_under(folder)
    assert read_json(folder / f"{MODEL}_app{APP}_{task_id}.json")["summary"]["total_findings"] == 250
    assert await harness.counts(task_id) == {"service_runs": 1, "tool_runs": 3, "findings": 250}


async def test_a_failed_event_of_a_task_never_recorded_records_it_with_its_folder(harness: Harness) -> None:
    case = scenario()
    failed = TaskFailed(task=case.request.task, reason="no analyzer answered")
    await harness.publish_event(failed, case.parent)  # the task's only message: no request, no `started`

    task = await harness.wait_status(case.request.task.id, "failed")
    assert task.status_reason == "no analyzer answered"
    assert task.created_at == failed.occurred_at  # the pending row was made from the event
    assert f"{MODEL}_app{APP}_{task.task_id}.json" in files_under(result_folder(harness, task))


async def test_terminal_event_stops_waiting_for_a_missing_service_and_ends_partial(
    nats_server: EmbeddedNats, database_url: str, tmp_path: Path
) -> None:
    # ack_wait 2 s and a margin of 0.5 s, not 10 s and 5 s: the wait below is the two, which the test only sits out.
    async with running_persister(
        nats_server.url, database_url, tmp_path, max_deliver=3, ack_wait_s=2.0, redelivery_margin_s=0.5
    ) as harness:
        case = scenario()
        task_id = case.request.task.id
        completed = msgspec.structs.replace(case.completed, services=["static", "dynamic"])
        await harness.publish_request(case.request, case.parent)
        await harness.publish_event(case.started, case.parent)
        await harness.publish_event(case.service, case.parent)
        await harness.publish_event(completed, case.parent)  # `dynamic` never sends its service event

        # It waits ack_wait and the margin (2.5 s here): a service event lost in flight is delivered again by then.
        task = await harness.wait_status(task_id, "partial", "completed", timeout_s=60)
        assert task.status == "partial"
        assert "dynamic" in (task.status_reason or "")
        folder = result_folder(harness, task)
        assert {path for path in files_under(folder) if path.startswith("services/")} == {
            "services/static.json"
        }
        assert read_json(folder / f"{MODEL}_app{APP}_{task_id}.json")["summary"]["status"] == "partial"


def test_a_terminal_event_waits_out_an_ack_wait_for_a_missing_service_event() -> None:
    # A service event delivered but lost in flight (a cluster node died) is delivered again after ack_wait only.
    for max_deliver in (3, 5, 10):
        holds = range(1, max_deliver - 1)  # the deliveries that are held back; the next one ends the task
        waited = sum(missing_service_wait_s(30.0, 5.0, max_deliver, n) for n in holds)
        assert waited >= 30.0 + 5.0, max_deliver


async def test_spans_continue_the_incoming_trace_with_db_and_folder_children(
    harness: Harness, spans: InMemorySpanExporter
) -> None:
    case = scenario(result=service_result(count=5))
    task_id = case.request.task.id
    parent_span_id = int(case.parent.split("-")[2], 16)
    await publish_scenario(harness, case)
    await harness.wait_status(task_id, "completed")
    completed_subject = event_subject(task_id, "completed")

    def mine() -> list[ReadableSpan]:
        return [
            span
            for span in spans.get_finished_spans()
            if format(span.context.trace_id, "032x") == case.trace_id
        ]

    async def complete() -> bool:
        names = {span.name for span in mine()}
        return {
            f"process {completed_subject}",
            "results.write",
            "db.write outcome",
            "db.write service",
        } <= names

    await eventually(complete, 5, "the persister's spans did not arrive")
    by_name = {span.name: span for span in mine()}
    process = by_name[f"process {completed_subject}"]
    assert (
        process.kind == SpanKind.CONSUMER and process.attributes is not None and process.context is not None
    )
    assert process.parent is not None and process.parent.span_id == parent_span_id
    assert process.attributes["messaging.system"] == "nats"
    assert process.attributes["messaging.destination.name"] == completed_subject
    assert process.attributes["assay.task_id"] == task_id
    for child in ("results.write", "db.write outcome"):
        written = by_name[child]
        assert written.parent is not None and written.parent.span_id == process.context.span_id, child
        assert written.attributes is not None and written.attributes["assay.task_id"] == task_id
    service_process = by_name[f"process {event_subject(task_id, 'service')}"].context
    service_write = by_name["db.write service"].parent
    assert service_process is not None and service_write is not None
    assert service_write.span_id == service_process.span_id


async def staged_outcomes(harness: Harness, task_id: str) -> dict[str, bytes | None]:
    """Each service run's staged outcome, by service."""
    async with sessions(harness.engine)() as session:
        query = select(ServiceRun.service, ServiceRun.staged_result).where(ServiceRun.task_id == task_id)
        return {service: data for service, data in (await session.execute(query)).all()}


async def staging_removed(harness: Harness, task_id: str) -> None:
    """The staged service outcomes go in the transaction that records the task finished."""
    staged = await staged_outcomes(harness, task_id)
    assert staged and all(data is None for data in staged.values()), staged
    assert not (harness.results_dir / ".staging").exists()
