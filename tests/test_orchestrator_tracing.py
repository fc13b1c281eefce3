"""The orchestrator's part of a task's one trace: CONSUMER span continuing the request's traceparent, PRODUCER spans
for its events with traceparent headers, a CLIENT span per analyzer call whose traceparent the analyzer gets."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.jetstream.natsd import EmbeddedNats
from shared.telemetry.tracing import TASK_ID_ATTRIBUTE
from tests.support.orchestrator import (
    ScriptedAnalyzer,
    kind,
    orchestrated,
    traceparent,
)


def span_id(span: ReadableSpan) -> str:
    return format(span.context.span_id, "016x")


def parent_id(span: ReadableSpan) -> str | None:
    return format(span.parent.span_id, "016x") if span.parent else None


async def test_spans_continue_the_requests_trace_and_travel_in_headers_and_frames(
    nats_server: EmbeddedNats, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    peer = ScriptedAnalyzer("static", ["talkative"])  # long enough for progress events
    parent, trace_id = traceparent()
    async with orchestrated(nats_server.url, tmp_path, [peer]) as bench:
        request = await bench.request("static", parent=parent)
        events = await bench.events.terminal(request.task.id)
    assert "progress" in {kind(item.event) for item in events}
    mine = [span for span in spans.get_finished_spans() if format(span.context.trace_id, "032x") == trace_id]
    by_name = {span.name: span for span in mine}

    process = by_name["process assay.requests.normal"]
    assert process.kind == SpanKind.CONSUMER and parent_id(process) == parent.split("-")[2]
    assert process.attributes is not None
    assert process.attributes["messaging.system"] == "nats"
    assert process.attributes["messaging.destination.name"] == "assay.requests.normal"
    assert process.attributes[TASK_ID_ATTRIBUTE] == request.task.id

    for item in events:
        event_kind = kind(item.event)
        if event_kind == "progress":
            # joins the trace, no span of its own
            assert item.headers["traceparent"].split("-")[1] == trace_id
            continue
        subject = f"assay.events.{request.task.id}.{event_kind}"
        producer = by_name[f"publish {subject}"]
        assert producer.kind == SpanKind.PRODUCER and parent_id(producer) == span_id(process)
        assert producer.attributes is not None
        assert producer.attributes["messaging.destination.name"] == subject
        assert producer.attributes[TASK_ID_ATTRIBUTE] == request.task.id
        assert item.headers["traceparent"] == f"00-{trace_id}-{span_id(producer)}-01"

    client = by_name["analyze static"]
    assert client.kind == SpanKind.CLIENT and parent_id(client) == span_id(process)
    assert client.attributes is not None
    assert client.attributes["rpc.system"] == "websocket"
    assert client.attributes["server.address"] == "127.0.0.1"
    assert client.attributes[TASK_ID_ATTRIBUTE] == request.task.id
    assert peer.analyzed[0].traceparent == f"00-{trace_id}-{span_id(client)}-01"
