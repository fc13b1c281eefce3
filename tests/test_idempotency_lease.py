"""The lease of an `Idempotency-Key` claim, on a real SQLite file and a real PostgreSQL database: a request that
runs longer than the lease keeps its claim (it renews it); a claim whose gateway died is taken over once its lease
ran out, in about a second here, not after a fixed minute (the fault suite's `kill -9 gateway` on PostgreSQL waited
60 s for it), by exactly one of several retries at once; and a request whose lease lapsed while it still ran (a
stalled renewal) never releases or answers the claim a retry took over: one key, one task, every answer names it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
from litestar import Response
from litestar.exceptions import ClientException
from sqlalchemy import update

from services.gateway.idempotency import POLL_S, WAIT_S, Limits, NewIds, Sessions, once
from shared.store.database import create_engine, sessions
from shared.store.models import IdempotencyKey
from shared.wire.messages import utcnow
from tests.support.gateway import migrate_database

LIMITS = Limits(ttl_s=3600.0, lease_s=1.0)
KEY = "lease-key"
DIGEST = "d" * 64
Answer = Response[dict[str, str]]


@pytest.fixture
async def store(any_database: str) -> AsyncIterator[Sessions]:
    engine = create_engine(await migrate_database(any_database))
    try:
        yield sessions(engine)
    finally:
        await engine.dispose()


class Work:
    """An accepting route's work: records the task id it was given, runs `step` (default: sleeps `seconds`),
    answers 202 naming the task."""

    def __init__(self, seconds: float = 0, step: Callable[[], Awaitable[None]] | None = None) -> None:
        self.seconds = seconds
        self.step = step
        self.ids: list[str] = []
        self.started = asyncio.Event()

    async def __call__(self, ids: NewIds) -> Answer:
        self.ids.append(ids.task())
        self.started.set()
        await (self.step() if self.step else asyncio.sleep(self.seconds))
        return Response({"task_id": ids.task()}, status_code=202)


def submit(store: Sessions, work: Work) -> asyncio.Task[Answer]:
    return asyncio.create_task(once(store, LIMITS, "", KEY, DIGEST, work, dict[str, str]))


async def read_claim(store: Sessions) -> IdempotencyKey | None:
    async with store() as session:
        return await session.get(IdempotencyKey, ("", KEY))


async def claimed(store: Sessions) -> None:
    """Return once the key's claim row exists."""
    async with asyncio.timeout(WAIT_S):
        while await read_claim(store) is None:
            await asyncio.sleep(POLL_S)


async def lapse(store: Sessions) -> None:
    """Put the claim's lease in the past: what a renewal stalled past the lease leaves (a busy SQLite file, a
    connection pool exhausted), while the request holding the claim still runs."""
    async with store() as session, session.begin():
        await session.execute(update(IdempotencyKey).values(held_until=utcnow() - timedelta(seconds=1)))


async def leave_claim(store: Sessions, held_for_s: float | None) -> NewIds:
    """The claim a gateway killed mid-request leaves: unanswered, its lease ending `held_for_s` from now (None: no
    lease, as a claim made before migration 0015); the ids its request queued."""
    claimed_at = utcnow()
    held_until = None if held_for_s is None else claimed_at + timedelta(seconds=held_for_s)
    async with store() as session, session.begin():
        session.add(
            IdempotencyKey(
                token_id="", key=KEY, request_sha256=DIGEST, created_at=claimed_at, held_until=held_until
            )
        )
    return NewIds.of_claim("", KEY, claimed_at)


def task_ids(*answers: Answer) -> set[str]:
    return {answer.content["task_id"] for answer in answers}


async def test_a_request_running_three_leases_long_keeps_its_claim_and_its_retry_gets_its_answer(
    store: Sessions,
) -> None:
    first_work, retry_work = Work(3 * LIMITS.lease_s), Work()
    first = submit(store, first_work)
    await claimed(store)
    retry = submit(store, retry_work)

    answers = await asyncio.gather(first, retry)

    assert len(first_work.ids) == 1 and not retry_work.ids, "a live request's claim was taken over"
    assert answers[1].content == answers[0].content
    assert answers[1].status_code == 202
    assert answers[1].headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("held_for_s", [LIMITS.lease_s, None], ids=["lease-runs-out", "no-lease"])
async def test_a_claim_whose_gateway_died_is_taken_over_once_its_lease_ran_out_with_its_ids(
    store: Sessions, held_for_s: float | None
) -> None:
    dead = await leave_claim(store, held_for_s)
    work = Work()

    # Within the retry's WAIT_S (else a 409), as the lease runs out long before.
    answer = await asyncio.wait_for(submit(store, work), WAIT_S)

    assert answer.status_code == 202
    assert work.ids == [dead.task()], "not the dead gateway's task"
    row = await read_claim(store)
    assert row is not None and row.status_code == 202


async def test_of_several_retries_at_once_exactly_one_takes_a_dead_claim_over(store: Sessions) -> None:
    dead = await leave_claim(store, -1)
    works = [Work(0.3) for _ in range(5)]

    answers = await asyncio.gather(*(submit(store, work) for work in works))

    assert sum(len(work.ids) for work in works) == 1, [work.ids for work in works]
    assert task_ids(*answers) == {dead.task()}
    assert sorted(answer.headers.get("Idempotent-Replayed", "") for answer in answers) == [""] + ["true"] * 4


async def test_a_request_whose_lease_lapsed_and_that_then_fails_leaves_the_claim_to_its_taker(
    store: Sessions,
) -> None:
    """The reviewer's case: A's renewal stalls, retry B takes the claim over, A's publish fails (503). A must not
    release B's claim: else retry C claims the key afresh, with new ids, and queues a second task."""
    a_may_fail = asyncio.Event()

    async def a_stalls_then_fails() -> None:
        await lapse(store)
        b_work.append(submit(store, b))
        await b.started.wait()
        a_may_fail.set()
        raise ClientException(status_code=503, detail="NATS unavailable")

    async def b_runs_past_as_failure() -> None:
        await a_may_fail.wait()
        await asyncio.sleep(0.2)

    a, b, c = Work(step=a_stalls_then_fails), Work(step=b_runs_past_as_failure), Work()
    b_work: list[asyncio.Task[Answer]] = []

    a_answer = (await asyncio.gather(submit(store, a), return_exceptions=True))[0]
    c_answer = await submit(store, c)  # the client of A retries after its answer
    b_answer = await b_work[0]

    queued = {*a.ids, *b.ids, *c.ids}
    assert len(queued) == 1, f"one key queued {len(queued)} tasks: {queued}"
    assert isinstance(a_answer, Response), f"A answered {a_answer!r}, not the key's answer"
    assert task_ids(a_answer, b_answer, c_answer) == queued
    row = await read_claim(store)
    assert row is not None and row.status_code == 202 and row.response is not None
    assert queued.pop().encode() in row.response


async def test_a_retry_that_took_a_claim_over_and_fails_gives_it_up_with_its_ids(store: Sessions) -> None:
    """A's lease lapses and A queues its task; B takes the claim over and fails. B must give the claim up, not
    remove it: C takes it over with A's ids (the task A queued), not a fresh claim with a second task."""
    b_failed = asyncio.Event()

    async def a_stalls_then_queues() -> None:
        await lapse(store)
        b_work.append(submit(store, b))
        await b.started.wait()

    async def b_fails() -> None:
        await asyncio.sleep(0.1)
        b_failed.set()
        raise ClientException(status_code=503, detail="NATS unavailable")

    a, b, c = Work(step=a_stalls_then_queues), Work(step=b_fails), Work()
    b_work: list[asyncio.Task[Answer]] = []

    a_task = submit(store, a)  # A, having lost its claim, answers what the key answers: C's answer, below
    await b.started.wait()
    await b_failed.wait()
    with pytest.raises(ClientException) as refused:
        await b_work[0]
    c_answer = await submit(store, c)
    a_answer = await a_task

    assert refused.value.status_code == 503
    queued = {*a.ids, *b.ids, *c.ids}
    assert len(queued) == 1, f"one key queued {len(queued)} tasks: {queued}"
    assert task_ids(a_answer, c_answer) == queued
