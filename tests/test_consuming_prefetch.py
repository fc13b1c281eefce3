"""The consumer loop holds at most `prefetch` messages of a durable that have not started, parked ones included.

A real nats-server and the real loop (shared/jetstream/consuming.py): every message has the same key, so while the first
runs the others park behind it. Parked messages still count against the prefetch, so the server sees at most
`prefetch` + the one running unacknowledged, however much room `concurrency` leaves; then all are handled in order.
"""

from __future__ import annotations

import asyncio

import msgspec

from shared.jetstream.connection import connect
from shared.jetstream.consuming import ACK, Delivery, Outcome, consume
from shared.jetstream.natsd import EmbeddedNats
from tests.support.work_stream import TASK, Work, work_flow

MESSAGES, PREFETCH = 20, 3


async def test_messages_parked_behind_their_key_count_against_the_prefetch(nats_server: EmbeddedNats) -> None:
    nc = await connect(nats_server.url, "prefetch-test")
    js = nc.jetstream()
    handled: list[str] = []
    first_running, release, done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def handle(work: Work, _delivery: Delivery) -> Outcome:
        if not handled:
            first_running.set()
            await release.wait()
        handled.append(work.event_id)
        if len(handled) == MESSAGES:
            done.set()
        return ACK

    # Room for eight at once: only the key holds the others back.
    flow = work_flow(js, "prefetch", handle, concurrency=8, prefetch=PREFETCH, key=lambda work: work.task.id)
    await flow.declare()
    for number in range(MESSAGES):
        await js.publish("prefetch.work", msgspec.json.encode(Work(task=TASK, event_id=f"evt_{number:02}")))
    stop = asyncio.Event()
    loop = asyncio.create_task(consume(flow, stop))
    try:
        await asyncio.wait_for(first_running.wait(), timeout=30)
        await asyncio.sleep(2.5)  # several fetch rounds (an idle fetcher lingers 1 s on the server)
        info = await js.consumer_info("PREFETCH", "prefetch-worker")
        assert info.num_ack_pending == PREFETCH + 1  # the parked ones and the one running, no more
        assert info.num_pending == MESSAGES - PREFETCH - 1  # the rest stays on the server
        release.set()
        await asyncio.wait_for(done.wait(), timeout=30)
    finally:
        stop.set()
        await loop
        await nc.close()
    assert handled == [f"evt_{number:02}" for number in range(MESSAGES)]  # one key: in publish order
