"""The gateway's cache of verified tokens: an entry lives for the cache time, a revoke through the gateway drops
it at once, a cache time of 0 keeps nothing, and the number of entries is bounded.

The clock is a plain counter the test advances, so expiry is asserted exactly, without sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.gateway.verified_tokens import LIMIT, VerifiedTokens
from shared.store.models import ApiToken


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def row(token_id: str) -> ApiToken:
    return ApiToken(
        token_id=token_id,
        name=f"name-{token_id}",
        scope="submit",
        salt="00",
        secret_hash="00",
        created_at=datetime.now(UTC),
    )


def presented(token_id: str) -> str:
    return f"assay_{token_id}_{'A' * 43}"


def test_an_entry_is_trusted_for_the_cache_time_and_not_after() -> None:
    clock = Clock()
    cache = VerifiedTokens(5.0, clock)
    cache.put(presented("0123456789ab"), row("0123456789ab"))

    clock.now += 4.9
    kept = cache.get(presented("0123456789ab"))
    clock.now += 0.1
    expired = cache.get(presented("0123456789ab"))

    assert kept is not None and kept.token_id == "0123456789ab"
    assert expired is None
    assert cache.get(presented("ba9876543210")) is None  # never verified


def test_forget_drops_the_revoked_token_only() -> None:
    cache = VerifiedTokens(5.0, Clock())
    cache.put(presented("0123456789ab"), row("0123456789ab"))
    cache.put(presented("ba9876543210"), row("ba9876543210"))

    cache.forget("0123456789ab")

    assert cache.get(presented("0123456789ab")) is None
    assert cache.get(presented("ba9876543210")) is not None


def test_a_cache_time_of_zero_keeps_nothing() -> None:
    cache = VerifiedTokens(0, Clock())
    cache.put(presented("0123456789ab"), row("0123456789ab"))

    assert cache.get(presented("0123456789ab")) is None


def test_the_oldest_entry_makes_room_beyond_the_limit() -> None:
    cache = VerifiedTokens(5.0, Clock())
    ids = [f"{index:012x}" for index in range(LIMIT + 1)]
    for token_id in ids:
        cache.put(presented(token_id), row(token_id))

    assert cache.get(presented(ids[0])) is None
    assert all(cache.get(presented(token_id)) is not None for token_id in ids[1:])
