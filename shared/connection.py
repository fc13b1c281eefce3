"""Connecting to NATS: one helper every service uses, reconnecting forever."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client

from shared.config import url_list

log = logging.getLogger(__name__)


async def connect(url: str, name: str) -> Client:
    """Connect to `url` (comma-separated servers) and keep reconnecting for as long as the process lives."""

    async def on_disconnect() -> None:
        log.warning("disconnected from NATS; reconnecting", extra={"service": name})

    async def on_reconnect() -> None:
        log.info("reconnected to NATS", extra={"service": name})

    async def on_error(error: Exception) -> None:
        log.warning("NATS error: %s", error, extra={"service": name})

    return await nats.connect(
        servers=url_list(url),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        allow_reconnect=True,
        connect_timeout=5,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        error_cb=on_error,
    )
