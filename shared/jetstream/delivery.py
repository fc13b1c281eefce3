"""Settling JetStream messages the same way in every consumer: redelivery backoff, keeping long work alive,
ack/nak/term that never raise, and the attributes of a `process <subject>` CONSUMER span."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from typing import Literal

from nats.aio.msg import Msg

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


def backoff_s(deliveries: int) -> float:
    """Delay before the next delivery of a message that failed: 1, 2, 4 … seconds, at most MAX_BACKOFF_S."""
    return min(MAX_BACKOFF_S, 2.0 ** max(0, deliveries - 1))


async def keep_alive(waiting: Collection[Msg], every_s: float) -> None:
    """Tell JetStream that the messages in `waiting` (a live collection) are still being worked on, every `every_s`,
    so that long work is not redelivered to another consumer meanwhile. Runs until cancelled."""
    while True:
        await asyncio.sleep(every_s)
        for msg in list(waiting):
            with contextlib.suppress(Exception):
                await msg.in_progress()


async def settle(msg: Msg, how: Literal["ack", "nak", "term"], delay_s: float | None = None) -> None:
    """Ack, nak (with a delay) or term; a connection that is down is logged, since JetStream redelivers anyway."""
    try:
        if how == "ack":
            await msg.ack()
        elif how == "nak":
            await msg.nak(delay=delay_s)
        else:
            await msg.term()
    except Exception as error:  # noqa: BLE001 - whatever it is, redelivery after ack_wait covers it
        log.warning("could not %s the message on %s: %r", how, msg.subject, error)


def consumer_attributes(msg: Msg, durable: str) -> dict[str, str | int]:
    """OpenTelemetry messaging attributes of a `process <subject>` span."""
    return {
        "messaging.system": "nats",
        "messaging.operation.type": "process",
        "messaging.destination.name": msg.subject,
        "messaging.consumer.group.name": durable,
        "messaging.message.delivery_count": msg.metadata.num_delivered,
    }
