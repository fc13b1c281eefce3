"""What the consumer loop's own tests share (no tests here): a stream of `Work` messages on a real nats-server,
one durable reading it, and the loop's `Flow` over it with the test's handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from shared.jetstream.consuming import Delivery, Flow, Outcome, Source
from shared.wire.tasks import TaskRef

ACK_WAIT_S, MAX_DELIVER = 10.0, 5
TASK = TaskRef(id="task_0123456789ab", model_slug="m", app_number=1, analysis_type="static")


class Work(msgspec.Struct, frozen=True, kw_only=True):
    task: TaskRef
    event_id: str


def work_flow(
    js: JetStreamContext, name: str, handle: Callable[[Work, Delivery], Awaitable[Outcome]], **loop: Any
) -> Flow[Work]:
    """The loop's flow over stream `<NAME>` (subject `<name>.work`, durable `<name>-worker`); `loop` sets its
    concurrency, prefetch, key (one message at a time by default). Nothing is expected to be given up."""
    stream, durable = name.upper(), f"{name}-worker"

    async def declare() -> None:
        await js.add_stream(StreamConfig(name=stream, subjects=[f"{name}.work"]))
        config = ConsumerConfig(
            durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT_S, max_deliver=MAX_DELIVER
        )
        await js.add_consumer(stream, config)

    async def given_up(*_args: object) -> None:
        raise AssertionError("nothing is given up here")

    return Flow(
        name=name,
        js=js,
        sources=[Source(stream, durable, msgspec.json.Decoder(Work).decode)],
        declare=declare,
        handle=handle,
        given_up=given_up,
        max_deliver=MAX_DELIVER,
        ack_wait_s=ACK_WAIT_S,
        **({"concurrency": 1, "prefetch": 1} | loop),
    )
