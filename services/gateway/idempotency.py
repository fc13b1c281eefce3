"""`Idempotency-Key` on the routes that accept work (`POST /api/analysis/run`, `POST /api/batches`).

A client that retries a request (a timeout, a dropped connection, a restarted gateway) sends the same key again
and gets the first answer back, status and body, instead of a second task. Keys are per token and live in the
database (`idempotency_keys`), so they survive a restart of every service:

- the first request with a key claims it (an INSERT that skips an existing key: of two requests at once, exactly
  one inserts), does the work, and stores its answer; a refusal (4xx, 503) releases the key, since nothing was
  accepted;
- a request whose key holds an answer gets that answer (header `Idempotent-Replayed: true`) when its body is the
  same (sha256 of the route and the decoded body), and a 422 naming the header when it is not;
- a request whose key is still being handled waits for the answer (up to `WAIT_S`, then 409: retry); the claim
  is held on a lease (`held_until`, ASSAY_IDEMPOTENCY_LEASE_S) its request renews every third of it while it runs,
  so a claim whose lease ran out belongs to a gateway that died, and a retry takes it over (one of several at once);
- each attempt holds the claim under its own random `holder`: it renews, releases and answers the claim only while
  it still holds it, so a request whose lease lapsed while it ran (a stalled renewal) and whose claim a retry took
  over neither removes nor overwrites that claim: it answers what the key answers, as a retry would;
- the ids of what a request queues under a key derive from its claim (`NewIds`): a retry that takes over the claim
  of a gateway that died after publishing queues the same tasks again, which JetStream (the request's
  `Nats-Msg-Id` is its task id) and the persister keep once, instead of doubling the work;
- a key older than ASSAY_IDEMPOTENCY_TTL_S counts as new (and `assay prune` removes it).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.exceptions import ClientException
from litestar.params import HeaderParameter
from sqlalchemy import ColumnElement, Table, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.gateway.errors import invalid
from services.gateway.resources import Resources
from shared.store.database import insert_new
from shared.store.models import IdempotencyKey
from shared.wire.messages import new_batch_id, new_event_id, utcnow
from shared.wire.tasks import new_task_id

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
KEY_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
WAIT_S = 5.0  # a retry waits this long for the first request with its key to be answered
POLL_S = 0.05
KEYS: Table = IdempotencyKey.__table__  # type: ignore[assignment]

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]

IdempotencyHeader = Annotated[
    str | None,
    HeaderParameter(
        name=HEADER,
        pattern=KEY_PATTERN,
        min_length=1,
        max_length=128,
        description="Optional. The same key (per token) with the same body returns the first answer again "
        "instead of accepting the work twice, also after a restart; a different body under a used key is a 422. "
        "1-128 characters of `A-Z a-z 0-9 _ . : -` (a UUID fits; anything else is a 422 naming the header); "
        "kept for ASSAY_IDEMPOTENCY_TTL_S.",
    ),
]


@dataclass(frozen=True)
class NewIds:
    """The ids an accepting route gives the work it queues: random, or, under an Idempotency-Key, derived from the
    claim (token, key, claim time) so that every attempt that holds one claim names the same tasks and batch."""

    seed: str | None = None

    @classmethod
    def of_claim(cls, token_id: str, key: str, claimed_at: datetime) -> NewIds:
        # Naive and to the microsecond: the same text whether the time was just made or read back from the database.
        return cls(
            f"{token_id}\x1f{key}\x1f{claimed_at.replace(tzinfo=None).isoformat(timespec='microseconds')}"
        )

    def task(self, index: int = 0) -> str:
        """The id of the index-th task queued."""
        return new_task_id() if self.seed is None else f"task_{self._hex(f'task {index}')}"

    def batch(self) -> str:
        return new_batch_id() if self.seed is None else f"batch_{self._hex('batch')}"

    def request(self, index: int = 0) -> str:
        """The event id (so the `Nats-Msg-Id`) of the index-th task's request: a repeat is stored once."""
        return new_event_id() if self.seed is None else self._hex(f"request {index}", 32)

    def _hex(self, what: str, digits: int = 12) -> str:
        return hashlib.sha256(f"{self.seed}\x1f{what}".encode()).hexdigest()[:digits]


def request_digest(route: str, body: msgspec.Struct) -> str:
    """sha256 of the route and the decoded body: the same request however its JSON was spaced or ordered."""
    return hashlib.sha256(route.encode() + b"\n" + msgspec.json.encode(body)).hexdigest()


def token_of(request: Request[Any, Any, Any]) -> str:
    """Whose keys these are: the token's id ("" on a gateway running without tokens)."""
    return str(request.state.get("token_id", ""))


def _now(session: AsyncSession) -> ColumnElement[datetime] | datetime:
    """The clock that decides when a lease ran out: the database's on PostgreSQL (gateways on several hosts share
    it, whatever their own clocks say); the host's on SQLite (one host)."""
    return func.now() if session.get_bind().dialect.name == "postgresql" else utcnow()


def _lease_end(session: AsyncSession, lease_s: float) -> ColumnElement[datetime] | datetime:
    return _now(session) + timedelta(seconds=lease_s)


def _lapsed(session: AsyncSession) -> ColumnElement[bool]:
    """The claim's lease ran out (or it has none: a claim made before 0015)."""
    return or_(IdempotencyKey.held_until.is_(None), IdempotencyKey.held_until < _now(session))


@dataclass(frozen=True)
class Held:
    """The row that holds a key, and whether its lease ran out by the database's clock."""

    row: IdempotencyKey
    lapsed: bool


async def _held(session: AsyncSession, token_id: str, key: str) -> Held | None:
    found = (
        await session.execute(
            select(IdempotencyKey, _lapsed(session)).where(
                IdempotencyKey.token_id == token_id, IdempotencyKey.key == key
            )
        )
    ).one_or_none()
    return None if found is None else Held(found[0], bool(found[1]))


async def _claim(
    sessions: Sessions,
    token_id: str,
    key: str,
    digest: str,
    claimed_at: datetime,
    holder: str,
    lease_s: float,
) -> Held | None:
    """None when this request (`holder`) now holds the key, claimed at `claimed_at`; else what holds it."""
    async with sessions() as session, session.begin():
        row = {
            "token_id": token_id,
            "key": key,
            "request_sha256": digest,
            "created_at": claimed_at,
            "held_until": _lease_end(session, lease_s),
            "holder": holder,
        }
        if (await session.execute(insert_new(session, KEYS).values(row))).rowcount:  # type: ignore[attr-defined]
            return None
        return await _held(session, token_id, key)


def _unanswered(token_id: str, key: str) -> tuple[ColumnElement[bool], ...]:
    return (
        IdempotencyKey.token_id == token_id,
        IdempotencyKey.key == key,
        IdempotencyKey.status_code.is_(None),
    )


def _mine(token_id: str, key: str, holder: str) -> tuple[ColumnElement[bool], ...]:
    """The key's claim, while unanswered and still held by `holder` (not taken over since)."""
    return (*_unanswered(token_id, key), IdempotencyKey.holder == holder)


async def _renew(
    sessions: Sessions, token_id: str, key: str, holder: str, lease_s: float, lost: asyncio.Event
) -> None:
    """Push the lease of this request's claim on every third of it until cancelled (the request answered); set
    `lost` and stop when the claim is no longer this request's (its lease lapsed and a retry took it over)."""
    while True:
        await asyncio.sleep(lease_s / 3)
        try:
            async with sessions() as session, session.begin():
                renewed = await session.execute(
                    update(IdempotencyKey)
                    .where(*_mine(token_id, key, holder))
                    .values(held_until=_lease_end(session, lease_s))
                )
        except Exception:  # noqa: BLE001 - a missed renewal may let a retry take over: `holder` tells it
            log.warning("could not renew the lease of %s %r", HEADER, key, exc_info=True)
            continue
        if not renewed.rowcount:  # type: ignore[attr-defined]
            log.warning("%s %r: the lease lapsed and another request took the claim over", HEADER, key)
            lost.set()
            return


async def _take_over(sessions: Sessions, row: IdempotencyKey, holder: str, lease_s: float) -> bool:
    """Whether this request (`holder`) now holds the claim `row` whose lease ran out: of retries at once, the one
    whose UPDATE finds `row`'s holder still there (the others find this one)."""
    same_holder = (
        IdempotencyKey.holder.is_(None) if row.holder is None else IdempotencyKey.holder == row.holder
    )
    async with sessions() as session, session.begin():
        taken = await session.execute(
            update(IdempotencyKey)
            .where(
                *_unanswered(row.token_id, row.key),
                IdempotencyKey.created_at == row.created_at,
                same_holder,
                _lapsed(session),
            )
            .values(holder=holder, held_until=_lease_end(session, lease_s))
        )
        return bool(taken.rowcount)  # type: ignore[attr-defined]


async def _release(sessions: Sessions, token_id: str, key: str, holder: str, took_over: bool) -> bool:
    """Free the key after a refusal; False when the claim was no longer this request's (nothing done). A claim
    made here is removed (a retry claims it anew); one taken over is only given up, its lease ended, since the
    request that died with it may have queued work under its ids: the next retry takes it over with them."""
    async with sessions() as session, session.begin():
        mine = _mine(token_id, key, holder)
        if took_over:
            done = await session.execute(
                update(IdempotencyKey).where(*mine).values(holder=None, held_until=None)
            )
        else:
            done = await session.execute(delete(IdempotencyKey).where(*mine))
        return bool(done.rowcount)  # type: ignore[attr-defined]


async def _expire(sessions: Sessions, row: IdempotencyKey) -> None:
    """Remove an expired key; only that row (another retry may have claimed the key since)."""
    async with sessions() as session, session.begin():
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.token_id == row.token_id,
                IdempotencyKey.key == row.key,
                IdempotencyKey.created_at == row.created_at,
            )
        )


async def _record(sessions: Sessions, token_id: str, key: str, holder: str, response: Response[Any]) -> bool:
    """Store the answer under the key; False when the claim was no longer this request's (nothing stored)."""
    location = response.headers.get("Location")
    async with sessions() as session, session.begin():
        stored = await session.execute(
            update(IdempotencyKey)
            .where(*_mine(token_id, key, holder))
            .values(
                status_code=response.status_code,
                response=msgspec.json.encode(response.content),
                location=location,
                answered_at=utcnow(),
                holder=None,
                held_until=None,
            )
        )
        return bool(stored.rowcount)  # type: ignore[attr-defined]


def _replay(row: IdempotencyKey, answer: type[T]) -> Response[T]:
    assert row.status_code is not None and row.response is not None
    headers = {"Idempotent-Replayed": "true"}
    if row.location:
        headers["Location"] = row.location
    return Response(
        msgspec.json.decode(row.response, type=answer), status_code=row.status_code, headers=headers
    )


async def _read(sessions: Sessions, token_id: str, key: str) -> Held | None:
    async with sessions() as session:
        return await _held(session, token_id, key)


def _busy(key: str) -> ClientException:
    return ClientException(
        status_code=409, detail=f"{HEADER}: a request with key {key!r} is still being handled; retry shortly"
    )


@dataclass(frozen=True)
class Limits:
    """How long a key lives (ASSAY_IDEMPOTENCY_TTL_S) and a claim's lease (ASSAY_IDEMPOTENCY_LEASE_S)."""

    ttl_s: float
    lease_s: float


async def _answered(
    sessions: Sessions,
    held: Held,
    limits: Limits,
    key: str,
    digest: str,
    answer: type[T],
    deadline: float,
    taker: str | None,
) -> Response[T] | IdempotencyKey | None:
    """The answer stored under a key another request holds, waiting for it while that request runs; the holding
    row itself once this request (`taker`; None: never) took it over (its lease ran out: its gateway died; the ids
    go with it); None when the key is free again (expired or released), for the caller to claim."""
    found: Held | None = held
    while found is not None:
        row = found.row
        if utcnow() - row.created_at > timedelta(seconds=limits.ttl_s):
            await _expire(sessions, row)
            return None
        if row.request_sha256 != digest:
            raise invalid(
                HEADER,
                f"key {key!r} was used for another request (other route or body): use a new key for it",
                source="header",
            )
        if row.status_code is not None:
            return _replay(row, answer)
        if taker is not None and found.lapsed and await _take_over(sessions, row, taker, limits.lease_s):
            return row
        if asyncio.get_running_loop().time() > deadline:
            raise _busy(key)
        await asyncio.sleep(POLL_S)
        found = await _read(sessions, row.token_id, key)  # a read: waiting takes no write lock
    return None


async def _stop(renewal: asyncio.Task[None]) -> None:
    """Cancel the lease's renewal and wait until it ended, so that no renewal runs after the claim is let go."""
    renewal.cancel()
    # wait(), not `await renewal`: its CancelledError is not raised here, while this task's own cancel still is.
    await asyncio.wait({renewal})


async def _answer_of_lost_claim(
    sessions: Sessions, limits: Limits, token_id: str, key: str, digest: str, answer: type[T]
) -> Response[T]:
    """What a request that lost its claim answers: never its own answer, which the request holding the claim now
    may contradict (a 503 where that one queues the task, or the reverse), but the one stored under the key, as a
    retry would get it (waiting up to WAIT_S for it); a 409 (retry shortly) when there is none by then."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    held = await _read(sessions, token_id, key)
    found = (
        None if held is None else await _answered(sessions, held, limits, key, digest, answer, deadline, None)
    )
    if isinstance(found, Response):
        return found
    raise _busy(key)


async def once(
    sessions: Sessions,
    limits: Limits,
    token_id: str,
    key: str,
    digest: str,
    accept: Callable[[NewIds], Awaitable[Response[T]]],
    answer: type[T],
) -> Response[T]:
    """`accept()`'s answer the first time `key` is used with this request; the same answer for every retry."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    # this attempt: it renews, releases and answers only a claim it still holds
    holder = secrets.token_hex(16)
    claimed_at = utcnow()
    took_over = False
    held = await _claim(sessions, token_id, key, digest, claimed_at, holder, limits.lease_s)
    while held is not None:
        found = await _answered(sessions, held, limits, key, digest, answer, deadline, holder)
        if isinstance(found, Response):
            return found
        if found is not None:  # taken over: this request carries on with the claim and the ids it gives
            claimed_at, took_over = found.created_at, True
            log.warning("%s %r: its first request was never answered; accepting it again", HEADER, key)
            break
        # Released (expired, or refused by its holder): claim it again.
        claimed_at = utcnow()
        held = await _claim(sessions, token_id, key, digest, claimed_at, holder, limits.lease_s)
    lost = asyncio.Event()
    renewal = asyncio.create_task(_renew(sessions, token_id, key, holder, limits.lease_s, lost))
    try:
        response = await accept(NewIds.of_claim(token_id, key, claimed_at))
    except BaseException as error:
        await _stop(renewal)
        # Refused (or interrupted) before anything was accepted: the key is free for a retry.
        if not lost.is_set() and await _release(sessions, token_id, key, holder, took_over):
            raise
        if not isinstance(error, Exception):
            raise
        log.warning(
            "%s %r: refused after losing its claim (%r); answering the key's answer", HEADER, key, error
        )
        return await _answer_of_lost_claim(sessions, limits, token_id, key, digest, answer)
    await _stop(renewal)
    try:
        if not lost.is_set() and await _record(sessions, token_id, key, holder, response):
            return response
    except Exception:  # noqa: BLE001 - the work is accepted: answer it; a retry past the lease redoes it, same ids
        log.exception("could not store the answer of %s %r", HEADER, key)
        return response
    log.warning("%s %r: answered after losing its claim; answering the key's answer", HEADER, key)
    return await _answer_of_lost_claim(sessions, limits, token_id, key, digest, answer)


async def idempotent(
    request: Request[Any, Any, Any],
    resources: Resources,
    key: str | None,
    route: str,
    body: msgspec.Struct,
    accept: Callable[[NewIds], Awaitable[Response[T]]],
    answer: type[T],
) -> Response[T]:
    """`accept()`, once per `Idempotency-Key` (of the request's token) when the request sends one."""
    if key is None:
        return await accept(NewIds())
    settings = resources.settings
    limits = Limits(settings.idempotency_ttl_s, settings.idempotency_lease_s)
    digest = request_digest(route, body)
    return await once(resources.sessions, limits, token_of(request), key, digest, accept, answer)
