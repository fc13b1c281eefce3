"""Server-Sent Events replayed from the real ASSAY_EVENTS stream, and the trace the gateway starts for a request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.jetstream.natsd import EmbeddedNats
from shared.telemetry.tracing import TASK_ID_ATTRIBUTE
from shared.wire.messages import TaskCompleted, TaskEvent, TaskProgress, TaskStarted, encode
from shared.wire.subjects import EVENTS_STREAM, REQUESTS_STREAM, event_subject, request_subject
from shared.wire.tasks import TaskRef
from tests.support.gateway import (
    APP,
    MODEL,
    Gateway,
    gateway_for,
    gateway_settings,
    insert_task,
    migrate_database,
)

SETTLED_END_S = 1.0  # a replay of an ended task ends once caught up: well within this


@pytest.fixture
async def gateway(
    tmp_path: Path, nats_server: EmbeddedNats, database_url: str, spans: InMemorySpanExporter
) -> AsyncIterator[Gateway]:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url))
    async with gateway_for(settings) as running:
        yield running


async def publish_event(gateway: Gateway, event: TaskEvent, kind: str) -> None:
    await gateway.js.publish(
        event_subject(event.task.id, kind), encode(event), headers={"Nats-Msg-Id": event.event_id}
    )


def about(task_id: str) -> TaskRef:
    return TaskRef(id=task_id, model_slug=MODEL, app_number=APP, analysis_type="static")


async def read_frames(gateway: Gateway, task_id: str) -> list[tuple[str, dict[str, object]]]:
    """Every frame of the SSE response, until the server ends it."""
    frames: list[tuple[str, dict[str, object]]] = []
    async with gateway.http.stream("GET", f"/api/tasks/{task_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                assert kind is not None
                frames.append((kind, json.loads(line.removeprefix("data: "))))
    return frames


async def test_sse_replays_the_task_events_live_and_ends_at_the_terminal_one(gateway: Gateway) -> None:
    task_id = (await gateway.submit()).json()["task_id"]
    other_id = (await gateway.submit()).json()["task_id"]
    await publish_event(gateway, TaskStarted(task=about(task_id), services=["static"]), "started")
    await publish_event(gateway, TaskStarted(task=about(other_id), services=["static"]), "started")

    reading = asyncio.create_task(read_frames(gateway, task_id))
    await asyncio.sleep(0.3)  # the first event is replayed; the next ones arrive while the client listens
    assert not reading.done(), "the stream ended before the terminal event"
    await publish_event(
        gateway, TaskProgress(task=about(task_id), service="static", percent=50, message="ruff"), "progress"
    )
    await publish_event(
        gateway, TaskCompleted(task=about(task_id), status="completed", services=["static"]), "completed"
    )
    await publish_event(gateway, TaskProgress(task=about(task_id), service="static", percent=99), "progress")
    frames = await asyncio.wait_for(reading, 10)

    assert [kind for kind, _ in frames] == ["started", "progress", "completed"]
    assert all(data["task"] == msgspec.to_builtins(about(task_id)) for _, data in frames)
    assert frames[1][1]["percent"] == 50 and frames[1][1]["kind"] == "progress"


async def test_sse_of_a_finished_task_replays_from_its_first_event(gateway: Gateway) -> None:
    task_id = (await gateway.submit()).json()["task_id"]
    await publish_event(gateway, TaskStarted(task=about(task_id), services=["static"]), "started")
    await publish_event(
        gateway, TaskCompleted(task=about(task_id), status="partial", services=["static"]), "completed"
    )

    frames = await asyncio.wait_for(read_frames(gateway, task_id), 10)

    assert [(kind, data["status"] if kind == "completed" else None) for kind, data in frames] == [
        ("started", None),
        ("completed", "partial"),
    ]


async def test_sse_of_a_finished_task_whose_events_aged_out_ends_once_caught_up(gateway: Gateway) -> None:
    """A finished task whose terminal event the stream no longer holds: the replay ends when it has sent what
    is left (here nothing, then only the first event), without waiting for anything more."""
    nothing_left, first_left = "task_00000000aaaa", "task_00000000bbbb"
    for task_id in (nothing_left, first_left):
        await insert_task(gateway.settings.database_url, task_id)
    await publish_event(gateway, TaskStarted(task=about(first_left), services=["static"]), "started")
    clock = asyncio.get_running_loop().time

    for task_id, kinds in ((nothing_left, []), (first_left, ["started"])):
        began = clock()
        frames = await asyncio.wait_for(read_frames(gateway, task_id), 10)
        took_s = clock() - began
        assert [kind for kind, _ in frames] == kinds
        assert took_s < SETTLED_END_S, f"{task_id}: ended only after {took_s:.2f} s"


async def test_sse_for_an_unknown_task_is_404(gateway: Gateway) -> None:
    assert (await gateway.http.get("/api/tasks/task_aaaaaaaaaaaa/events")).status_code == 404


async def test_request_span_continues_the_callers_traceparent_and_parents_the_publish_span(
    gateway: Gateway, spans: InMemorySpanExporter
) -> None:
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    body = {"model_slug": MODEL, "app_number": APP, "analysis_type": "static", "priority": "low"}
    response = await gateway.http.post(
        "/api/analysis/run", json=body, headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"}
    )

    assert response.status_code == 202
    task_id = response.json()["task_id"]
    assert response.json()["trace_id"] == caller_trace
    mine = [span for span in spans.get_finished_spans() if span.context.trace_id == int(caller_trace, 16)]
    [server] = [span for span in mine if span.kind == SpanKind.SERVER]
    [producer] = [span for span in mine if span.kind == SpanKind.PRODUCER]
    assert server.name == "POST /api/analysis/run"
    assert server.parent is not None and server.parent.span_id == int(caller_span, 16)
    assert server.attributes is not None and server.attributes[TASK_ID_ATTRIBUTE] == task_id
    assert server.attributes["http.response.status_code"] == 202
    assert producer.name == f"publish {request_subject('low')}"
    assert producer.parent is not None and producer.parent.span_id == server.context.span_id
    assert producer.attributes is not None
    assert producer.attributes["messaging.system"] == "nats"
    assert producer.attributes["messaging.destination.name"] == request_subject("low")
    assert producer.attributes[TASK_ID_ATTRIBUTE] == task_id

    message = await gateway.js.get_last_msg(REQUESTS_STREAM, request_subject("low"))
    assert message.headers is not None
    assert message.headers["traceparent"] == f"00-{caller_trace}-{producer.context.span_id:016x}-01"


async def test_route_spans_are_named_by_their_template(gateway: Gateway, spans: InMemorySpanExporter) -> None:
    await gateway.http.get("/api/tasks/task_bbbbbbbbbbbb")

    names = [span.name for span in spans.get_finished_spans() if span.kind == SpanKind.SERVER]
    assert "GET /api/tasks/{task_id}" in names


async def read_raw_frames(gateway: Gateway, task_id: str, headers: dict[str, str]) -> list[dict[str, str]]:
    """Every frame as its fields (`id`, `event`, `data`), until the server ends the stream."""
    frames: list[dict[str, str]] = []
    async with gateway.http.stream("GET", f"/api/tasks/{task_id}/events", headers=headers) as response:
        assert response.status_code == 200
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if not line and fields:
                frames.append(fields)
                fields = {}
            elif line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
    return frames


async def test_each_frame_has_an_id_and_last_event_id_resumes_after_it(gateway: Gateway) -> None:
    task_id = (await gateway.submit()).json()["task_id"]
    await publish_event(gateway, TaskStarted(task=about(task_id), services=["static"]), "started")
    await publish_event(gateway, TaskProgress(task=about(task_id), service="static", percent=40), "progress")
    await publish_event(gateway, TaskProgress(task=about(task_id), service="static", percent=80), "progress")
    await publish_event(
        gateway, TaskCompleted(task=about(task_id), status="completed", services=["static"]), "completed"
    )

    everything = await read_raw_frames(gateway, task_id, {})
    resumed = await read_raw_frames(gateway, task_id, {"Last-Event-ID": everything[1]["id"]})

    ids = [int(frame["id"]) for frame in everything]
    assert [frame["event"] for frame in everything] == ["started", "progress", "progress", "completed"]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert resumed == everything[2:]
    bad = await gateway.http.get(f"/api/tasks/{task_id}/events", headers={"Last-Event-ID": "soon"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["source"] == "header"


async def consumers_on_events(gateway: Gateway) -> int:
    return (await gateway.js.stream_info(EVENTS_STREAM)).state.consumer_count


async def test_following_a_task_creates_no_consumer(gateway: Gateway) -> None:
    """The gateway reads the stream by sequence (its NATS user may not create or delete consumers at all)."""
    task_id = (await gateway.submit()).json()["task_id"]
    await publish_event(gateway, TaskStarted(task=about(task_id), services=["static"]), "started")

    async with gateway.http.stream("GET", f"/api/tasks/{task_id}/events") as response:
        lines = response.aiter_lines()
        while not (await anext(lines)).startswith("event: started"):
            pass
        assert await consumers_on_events(gateway) == 0
        await publish_event(
            gateway, TaskProgress(task=about(task_id), service="static", percent=5), "progress"
        )
        while not (await anext(lines)).startswith("event: progress"):
            pass
        assert await consumers_on_events(gateway) == 0
