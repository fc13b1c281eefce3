"""A request whose publish failed removes the `accepted.<task_id>` entry it wrote and shortens its batch's record,
on a real nats-server, but not once another attempt at the same task wrote them again: under an
`Idempotency-Key`, a retry that took the claim over (the same ids) may have recorded and queued that task."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import nats
import pytest
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from services.gateway.api.batches.batch import _keep_record
from services.gateway.api.batches.plan import BatchRecord, BatchTask
from services.gateway.publisher import _forget
from shared.jetstream.natsd import EmbeddedNats
from shared.wire.subjects import batch_key

KEY = "accepted.task_0123456789ab"


@pytest.fixture
async def bucket(nats_server: EmbeddedNats) -> AsyncIterator[KeyValue]:
    nc = await nats.connect(nats_server.url)
    try:
        yield await nc.jetstream().create_key_value(bucket="forget_test")
    finally:
        await nc.close()


async def test_a_failed_publish_removes_its_own_entry(bucket: KeyValue) -> None:
    mine = await bucket.put(KEY, b"request")

    await _forget(bucket, KEY, mine)

    with pytest.raises(KeyNotFoundError):
        await bucket.get(KEY)


async def test_a_failed_publish_keeps_an_entry_written_again_by_another_attempt(bucket: KeyValue) -> None:
    mine = await bucket.put(KEY, b"request")
    await bucket.put(KEY, b"request")  # the retry that took the claim over records the same task

    await _forget(bucket, KEY, mine)

    assert (await bucket.get(KEY)).value == b"request"


def record(tasks: int) -> BatchRecord:
    ids = [f"task_{index:012x}" for index in range(tasks)]
    return BatchRecord(
        batch_id="batch_0123456789ab",
        tasks=[BatchTask(task_id=i, model_slug="m", app_number=1, analysis_type="static") for i in ids],
        waived_rules=[],
    )


@pytest.mark.parametrize("written_again", [False, True], ids=["own-record", "written-again"])
async def test_a_failed_batch_shortens_only_its_own_record(bucket: KeyValue, written_again: bool) -> None:
    whole = record(3)
    key = batch_key(whole.batch_id)
    mine = await bucket.put(key, msgspec.json.encode(whole))
    if written_again:
        await bucket.put(key, msgspec.json.encode(whole))  # a retry that took the claim over queued it all

    await _keep_record(bucket, msgspec.structs.replace(whole, tasks=whole.tasks[:1]), mine)

    kept = msgspec.json.decode((await bucket.get(key)).value or b"", type=BatchRecord)
    assert len(kept.tasks) == (3 if written_again else 1)
