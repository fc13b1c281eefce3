"""A message that kills its consumer on every delivery exhausts `max_deliver` alone; the work beside it completes.

A real nats-server and the real loop (shared/jetstream/consuming.py). JetStream charges a delivery to every message
held when a consumer dies. Here the poison message "crashes" the consumer each time it runs (the test closes the
connection without acking anything and drops the loop, as a `kill -9` would) while ordinary messages are held and
running beside it on their first delivery. Redelivered, each message runs alone, so each later crash is charged to
the poison message only: it is delivered exactly `max_deliver` times and never again, and every ordinary message
completes with deliveries to spare.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import msgspec
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from shared.jetstream.connection import connect
from shared.jetstream.consuming import ACK, Delivery, Flow, Outcome, Source, consume
from shared.jetstream.natsd import EmbeddedNats
from tests.support.work_stream import MAX_DELIVER, TASK, Work

ACK_WAIT_S, ORDINARY, POISON = 1.0, 3, "evt_poison"


async def test_only_the_poison_message_is_charged_for_repeated_crashes(nats_server: EmbeddedNats) -> None:
    deliveries: Counter[str] = Counter()
    completed: set[str] = set()
    crashed = asyncio.Event()

    async def handle(work: Work, delivery: Delivery) -> Outcome:
        deliveries[work.event_id] = max(deliveries[work.event_id], delivery.deliveries)
        if work.event_id == POISON:
            crashed.set()
            await asyncio.Event().wait()  # the process dies here: nothing settles
        await asyncio.sleep(0.5)  # long enough to be running beside the poison message
        completed.add(work.event_id)
        return ACK

    async def run_once() -> None:
        """One consumer process: runs until the poison message crashes it, or a while when it no longer comes."""
        nc = await connect(nats_server.url, "crash-loop-test")
        js = nc.jetstream()

        async def declare() -> None:
            await js.add_stream(StreamConfig(name="CRASH", subjects=["crash.work"]))
            config = ConsumerConfig(
                durable_name="crash-worker",
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=ACK_WAIT_S,
                max_deliver=MAX_DELIVER,
            )
            await js.add_consumer("CRASH", config)

        async def given_up(*_args: object) -> None:
            raise AssertionError("the loop never sees the poison message fail: it dies with it")

        flow = Flow(
            name="crash",
            js=js,
            sources=[Source("CRASH", "crash-worker", msgspec.json.Decoder(Work).decode)],
            declare=declare,
            handle=handle,
            given_up=given_up,
            max_deliver=MAX_DELIVER,
            ack_wait_s=ACK_WAIT_S,
            concurrency=ORDINARY + 1,
            prefetch=ORDINARY + 1,
        )
        if not deliveries:
            await declare()
            for number in range(ORDINARY):
                await js.publish("crash.work", msgspec.json.encode(Work(task=TASK, event_id=f"evt_{number}")))
            await js.publish("crash.work", msgspec.json.encode(Work(task=TASK, event_id=POISON)))
        crashed.clear()
        stop = asyncio.Event()
        loop = asyncio.create_task(consume(flow, stop))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(crashed.wait(), timeout=4 * ACK_WAIT_S + 2)
        await nc.close()  # first: no ack, nak or keep-alive leaves the dying process
        stop.set()
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop

    first_round_overlapped = False
    for _ in range(MAX_DELIVER + 1):
        await run_once()
        if deliveries[POISON] == 1:
            # The crash this test is about: ordinary messages were held when the poison message first ran.
            first_round_overlapped = len(completed) < ORDINARY
    assert first_round_overlapped
    assert deliveries[POISON] == MAX_DELIVER  # charged for every crash, then never delivered again
    assert completed == {f"evt_{number}" for number in range(ORDINARY)}
    assert all(deliveries[f"evt_{number}"] < MAX_DELIVER for number in range(ORDINARY))
