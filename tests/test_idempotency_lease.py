"""The lease of an `Idempotency-Key` claim, on a real SQLite file and a real PostgreSQL database: a request that
runs longer than the lease keeps its claim (it renews it), and a claim whose gateway died is taken over once its
lease ran out, in a fraction of a second here, not after a fixed minute (the fault suite's `kill -9 gateway` on
PostgreSQL waited 60 s for it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from litestar import Response

from services.gateway.idempotency import WAIT_S, Limits, NewIds, Sessions, once
from shared.store.database import create_engine, sessions
from shared.store.models import IdempotencyKey
from shared.wire.messages import utcnow
from tests.support.gateway import migrate_database

LIMITS = Limits(ttl_s=3600.0, lease_s=0.3)
KEY = "lease-key"
DIGEST = "d" * 64


@pytest.fixture
async def store(any_database: str) -> AsyncIterator[Sessions]:
    engine = create_engine(await migrate_database(any_database))
    try:
        yield sessions(engine)
    finally:
        await engine.dispose()


class Work:
    """An accepting route's work that takes `seconds` (a coroutine of chosen duration) and counts its calls."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ids: list[str] = []

    async def __call__(self, ids: NewIds) -> Response[dict[str, str]]:
        self.ids.append(ids.task())
        await asyncio.sleep(self.seconds)
        return Response({"task_id": ids.task()}, status_code=202)


def submit(store: Sessions, work: Work) -> asyncio.Task[Response[dict[str, str]]]:
    return asyncio.create_task(once(store, LIMITS, "", KEY, DIGEST, work, dict[str, str]))


async def test_a_request_running_four_leases_long_keeps_its_claim_and_its_retry_gets_its_answer(
    store: Sessions,
) -> None:
    first_work, retry_work = Work(4 * LIMITS.lease_s), Work(0)
    first = submit(store, first_work)
    await asyncio.sleep(LIMITS.lease_s / 3)  # the first has claimed the key
    retry = submit(store, retry_work)

    answers = await asyncio.gather(first, retry)

    assert len(first_work.ids) == 1 and not retry_work.ids, "a live request's claim was taken over"
    assert answers[1].content == answers[0].content
    assert answers[1].status_code == 202
    assert answers[1].headers["Idempotent-Replayed"] == "true"


async def test_a_claim_whose_gateway_died_is_taken_over_once_its_lease_ran_out_with_its_ids(
    store: Sessions,
) -> None:
    claimed_at = utcnow()
    async with store() as session, session.begin():
        # What a gateway killed mid-request leaves: its claim, unanswered, the lease running out shortly.
        session.add(
            IdempotencyKey(
                token_id="",
                key=KEY,
                request_sha256=DIGEST,
                created_at=claimed_at,
                held_until=claimed_at + timedelta(seconds=LIMITS.lease_s),
            )
        )
    work = Work(0)

    # Within the retry's WAIT_S (else a 409), as the lease runs out long before.
    answer = await asyncio.wait_for(submit(store, work), WAIT_S)

    assert answer.status_code == 202
    assert work.ids == [NewIds.of_claim("", KEY, claimed_at).task()], "not the dead gateway's task"
    async with store() as session:
        row = await session.get(IdempotencyKey, ("", KEY))
    assert row is not None and row.status_code == 202
