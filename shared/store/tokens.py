"""API tokens: `assay_<id>_<secret>`, kept in the database as a salted PBKDF2-SHA256 hash of the secret.

The id finds the row; the secret is compared in constant time. Scopes are ordered: read < submit < admin (read
may only look, submit may also run and cancel analyses, admin may also manage tokens). Used by the gateway
(to authenticate requests and manage tokens over HTTP) and by the CLI (`assay up` and `assay token --direct`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.store.models import ApiToken

Scope = Literal["read", "submit", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "submit", "admin")
TOKEN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
TOKEN_ID_PATTERN = r"^[0-9a-f]{12}$"
_TOKEN = re.compile(r"^assay_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")

# The secret is 256 random bits, so stretching adds little against guessing; a few thousand rounds keep a
# leaked table costly to test offline without slowing every request.
ITERATIONS = 5_000
LAST_USE_RESOLUTION = timedelta(minutes=1)  # last_used_at is written at most this often per token

Sessions = async_sessionmaker[AsyncSession]


def allows(granted: str, needed: Scope) -> bool:
    """Whether a token of scope `granted` may do what needs `needed`."""
    return granted in SCOPES and SCOPES.index(granted) >= SCOPES.index(needed)


def _hash(secret: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt), ITERATIONS).hex()


def issue(name: str, scope: Scope) -> tuple[str, ApiToken]:
    """A new token (the only time its secret exists in clear) and the row that remembers it."""
    token_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
    row = ApiToken(
        token_id=token_id,
        name=name,
        scope=scope,
        salt=salt,
        secret_hash=_hash(secret, salt),
        created_at=datetime.now(UTC),
        last_used_at=None,
        revoked_at=None,
    )
    return f"assay_{token_id}_{secret}", row


def matches(row: ApiToken, secret: str) -> bool:
    """Constant-time comparison of the presented secret's hash with the stored one."""
    return hmac.compare_digest(_hash(secret, row.salt), row.secret_hash)


async def create_token(sessions: Sessions, name: str, scope: Scope) -> tuple[str, ApiToken]:
    """Store a new token; returns the token (show it once) and its row."""
    token, row = await asyncio.to_thread(issue, name, scope)
    async with sessions() as session, session.begin():
        session.add(row)
    return token, row


async def list_tokens(sessions: Sessions) -> list[ApiToken]:
    """Every token, revoked ones included, oldest first."""
    async with sessions() as session:
        return list((await session.scalars(select(ApiToken).order_by(ApiToken.created_at))).all())


async def revoke_token(sessions: Sessions, token_id: str) -> ApiToken | None:
    """Mark the token revoked (kept for the record); None when there is no such token."""
    async with sessions() as session, session.begin():
        row = await session.get(ApiToken, token_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
    return row


async def active_tokens(sessions: Sessions) -> int:
    """How many tokens are not revoked."""
    async with sessions() as session:
        query = select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_(None))
        return await session.scalar(query) or 0


async def authenticate(sessions: Sessions, presented: str) -> ApiToken | None:
    """The token's row when `presented` is a valid, unrevoked token, else None; records its last use."""
    parsed = _TOKEN.match(presented)
    if parsed is None:
        return None
    token_id, secret = parsed.groups()
    async with sessions() as session:
        row = await session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return None
    if not await asyncio.to_thread(matches, row, secret):
        return None
    now = datetime.now(UTC)
    if row.last_used_at is None or now - row.last_used_at > LAST_USE_RESOLUTION:
        async with sessions() as session, session.begin():
            await session.execute(
                update(ApiToken).where(ApiToken.token_id == token_id).values(last_used_at=now)
            )
        row.last_used_at = now
    return row
