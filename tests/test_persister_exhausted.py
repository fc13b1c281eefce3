"""The persister turns JetStream's max-deliveries advisories into dead letters and failed tasks, once each.

A real nats-server and the persister in-process; the test itself plays an orchestrator that takes a request and
dies before settling it, every time, so that only the server can tell that the request is exhausted."""

from __future__ import annotations

from pathlib import Path

import nats.errors

from shared.jetstream.natsd import EmbeddedNats
from shared.jetstream.streams import consumer_config, declare_consumer
from shared.wire import subjects
from shared.wire.messages import AnalysisRequest, decode_dead_letter
from shared.wire.tasks import TaskRef, new_task_id
from tests.support.persister import eventually, running_persister

ACK_WAIT_S, MAX_DELIVER = 1.0, 2
DURABLE = subjects.orchestrator_durable("normal")


async def test_an_exhausted_request_is_dead_lettered_once_and_its_task_failed_with_the_reason(
    nats_server: EmbeddedNats, tmp_path: Path, database_url: str
) -> None:
    async with running_persister(nats_server.url, database_url, tmp_path) as harness:
        js = harness.js
        config = consumer_config(DURABLE, subjects.request_subject("normal"), ACK_WAIT_S, MAX_DELIVER)
        await declare_consumer(js, subjects.REQUESTS_STREAM, config)
        request = AnalysisRequest(
            task=TaskRef(id=new_task_id(), model_slug="m", app_number=1, analysis_type="static")
        )
        await harness.publish_request(request)
        dying = await js.pull_subscribe_bind(DURABLE, stream=subjects.REQUESTS_STREAM)
        for _ in range(MAX_DELIVER):  # taken, never settled: the consumer "died" each time
            [msg] = await dying.fetch(1, timeout=ACK_WAIT_S * 5)
            assert msg.metadata.num_delivered == _ + 1
        try:  # asking once more is what makes the server notice the limit
            await dying.fetch(1, timeout=ACK_WAIT_S * 3)
        except nats.errors.TimeoutError:
            pass
        task = await harness.wait_status(request.task.id, "failed")
        reason = (
            f"delivery limit reached: {DURABLE} was given it {MAX_DELIVER} times and never settled it "
            "(the consumer stopped, crashed or hung on it each time)"
        )
        assert task.status_reason == reason

        async def one_letter() -> bool:
            return (await js.stream_info(subjects.DLQ_STREAM)).state.messages == 1

        await eventually(one_letter, 10, "no dead letter")
        letter = decode_dead_letter((await js.get_msg(subjects.DLQ_STREAM, 1)).data or b"")
        assert (letter.task_id, letter.consumer, letter.deliveries) == (request.task.id, DURABLE, MAX_DELIVER)
        assert letter.subject == subjects.request_subject("normal") and letter.reason == reason
        assert letter.payload == (await js.get_msg(subjects.REQUESTS_STREAM, 1)).data.decode()  # type: ignore[union-attr]

        # The same advisory handled again (another replica, a redelivery): still one letter, the task unchanged.
        advisory = await js.get_msg(subjects.ADVISORIES_STREAM, 1)
        await harness.client.publish(advisory.subject or "", advisory.data or b"")
        await harness.client.flush()

        async def handled_twice() -> bool:
            info = await js.consumer_info(subjects.ADVISORIES_STREAM, subjects.PERSISTER_ADVISORIES_DURABLE)
            return bool(info.delivered.stream_seq == 2 and info.num_ack_pending == 0)

        await eventually(handled_twice, 15, "the repeated advisory was not handled")
        assert (await js.stream_info(subjects.DLQ_STREAM)).state.messages == 1
        assert (await harness.task(request.task.id)).status_reason == reason  # type: ignore[union-attr]
