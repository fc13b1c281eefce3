"""Connecting to NATS: one helper every service uses, reconnecting forever, with the service's credentials."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client

from shared.operations.config import url_list
from shared.operations.errors import InputError
from shared.operations.redact import masked_url

log = logging.getLogger(__name__)


class BadCredentials(InputError):
    """ASSAY_NATS_CREDS is neither `user:password` nor the path of a .creds file."""


def credential_options(creds: str | None) -> dict[str, Any]:
    """nats.connect() keywords for ASSAY_NATS_CREDS: a .creds file path, or `user:password`.

    With a user name, the connection's reply inboxes live under `_INBOX_<user>.`, which is what that user's
    subscribe permission allows (see shared/jetstream/nats_users.py): no user can read another's replies.
    """
    if not creds:
        return {}
    if Path(creds).is_file():
        return {"user_credentials": creds}
    user, sep, password = creds.partition(":")
    if not sep or not user or not password:
        raise BadCredentials(
            "ASSAY_NATS_CREDS must be `user:password` or the path of an existing .creds file"
        )
    return {"user": user, "password": password, "inbox_prefix": inbox_prefix(user)}


def inbox_prefix(user: str) -> str:
    """Where a user's request replies arrive (its subscribe permission allows exactly this prefix)."""
    return f"_INBOX_{user}"


async def connect(url: str, name: str, creds: str | None = None) -> Client:
    """Connect to `url` (comma-separated servers) as `creds` and keep reconnecting while the process lives."""

    async def on_disconnect() -> None:
        log.warning("disconnected from NATS; reconnecting", extra={"client": name})

    async def on_reconnect() -> None:
        log.info("reconnected to NATS at %s", masked_url(url), extra={"client": name})

    async def on_error(error: Exception) -> None:
        log.warning("NATS error: %s", error, extra={"client": name})

    servers = url_list(url)
    tls = {"tls": ssl.create_default_context()} if any(s.startswith("tls://") for s in servers) else {}
    return await nats.connect(
        servers=servers,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        # A node that vanishes without closing the connection (a network cut, a frozen host) is noticed within
        # ~30 s, not the default 4 minutes; one that died is noticed at once (its socket closes). Either way the
        # client moves on to the next of `servers`.
        ping_interval=10,
        max_outstanding_pings=3,
        allow_reconnect=True,
        connect_timeout=5,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        error_cb=on_error,
        **credential_options(creds),
        **tls,
    )
