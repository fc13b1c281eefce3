"""A redelivered message shows as a new `process <subject>` CONSUMER span linked to its first delivery.

A real nats-server, the real consumer loop (shared/jetstream/consuming.py) and the test process's spans in memory: the
handler asks for the message again once (a nak), then acknowledges it.
"""

from __future__ import annotations

import asyncio

import msgspec
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.jetstream.connection import connect
from shared.jetstream.consuming import ACK, Delivery, Outcome, Retry, consume
from shared.jetstream.natsd import EmbeddedNats
from shared.telemetry.tracing import inject_headers
from tests.support.work_stream import TASK, Work, work_flow

SUBJECT = "redelivery.work"
tracer = trace.get_tracer("tests.redelivery")


async def test_a_nakd_message_gets_a_second_consumer_span_linked_to_the_first(
    nats_server: EmbeddedNats, spans: InMemorySpanExporter
) -> None:
    nc = await connect(nats_server.url, "redelivery-test")
    js = nc.jetstream()
    deliveries: list[int] = []
    acked = asyncio.Event()

    async def handle(_work: Work, delivery: Delivery) -> Outcome:
        deliveries.append(delivery.deliveries)
        if delivery.deliveries == 1:
            return Retry(delay_s=0.1, reason="not yet")
        acked.set()
        return ACK

    flow = work_flow(js, "redelivery", handle)
    await flow.declare()
    work = Work(task=TASK, event_id="evt_1")
    with tracer.start_as_current_span(f"publish {SUBJECT}", kind=SpanKind.PRODUCER) as producer:
        await js.publish(SUBJECT, msgspec.json.encode(work), headers=inject_headers())
    stop = asyncio.Event()
    loop = asyncio.create_task(consume(flow, stop))
    try:
        await asyncio.wait_for(acked.wait(), timeout=30)
    finally:
        stop.set()
        await loop
        await nc.close()

    published = producer.get_span_context()
    consumers = sorted(
        (
            span
            for span in spans.get_finished_spans()
            if span.name == f"process {SUBJECT}" and span.context.trace_id == published.trace_id
        ),
        key=lambda span: span.start_time or 0,
    )
    assert deliveries == [1, 2]
    assert [span.kind for span in consumers] == [SpanKind.CONSUMER, SpanKind.CONSUMER]
    first, second = consumers
    assert [
        span.attributes and span.attributes["messaging.message.delivery_count"] for span in consumers
    ] == [1, 2]
    assert first.links == ()  # a first delivery links nothing
    [link] = second.links
    assert link.attributes is not None and link.attributes["messaging.message.delivery_count"] == 1
    # The link's context names the first delivery: the CONSUMER child of that context with delivery count 1.
    named = [
        span
        for span in consumers
        if span.parent is not None
        and span.parent.span_id == link.context.span_id
        and span.attributes is not None
        and span.attributes["messaging.message.delivery_count"] == 1
    ]
    assert named == [first]
    assert second.context.span_id != first.context.span_id
