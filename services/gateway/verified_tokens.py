"""Tokens the gateway verified a moment ago: trusted for `ASSAY_TOKEN_CACHE_S` without checking them again.

Checking a token costs a database read and a PBKDF2 of its secret (about a millisecond of CPU), on every request;
a client submitting hundreds of analyses a second presents the same token each time. Entries are keyed by a
SHA-256 of the presented token (the secret itself is not kept), expire after the cache time, and are bounded in
number. A revoke through this gateway drops the token's entries at once; a revoke elsewhere (another gateway,
`assay token revoke --direct`) takes effect when they expire, so the cache time bounds how long a revoked token
is still accepted.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from shared.store.models import ApiToken

LIMIT = 1024  # distinct tokens kept; the oldest entry makes room


def _key(presented: str) -> bytes:
    return hashlib.sha256(presented.encode()).digest()


class VerifiedTokens:
    """`get` a token verified less than `ttl_s` ago, `put` one just verified, `forget` a revoked one."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: dict[bytes, tuple[float, ApiToken]] = {}  # key → (expiry, row), oldest first

    def get(self, presented: str) -> ApiToken | None:
        """The row of `presented` if it was verified within the cache time, else None."""
        key = _key(presented)
        entry = self._entries.get(key)
        if entry is None:
            return None
        expiry, row = entry
        if self.clock() >= expiry:
            del self._entries[key]
            return None
        return row

    def put(self, presented: str, row: ApiToken) -> None:
        """Remember that `presented` was verified now (nothing is kept when the cache time is 0)."""
        if self.ttl_s <= 0:
            return
        key = _key(presented)
        self._entries.pop(key, None)  # re-inserted last: the dict's order is the expiry order
        if len(self._entries) >= LIMIT:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (self.clock() + self.ttl_s, row)

    def forget(self, token_id: str) -> None:
        """Drop every entry of the token `token_id` (revoked: refused from the next request on)."""
        for key, (_expiry, row) in list(self._entries.items()):
            if row.token_id == token_id:
                del self._entries[key]
