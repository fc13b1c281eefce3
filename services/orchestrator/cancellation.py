"""Cancel requests → the tasks this replica runs.

The gateway first puts a `cancel.<task_id>` marker in the tasks bucket, then publishes on core NATS
`assay.control.cancel.<task_id>`. Every replica hears the core message; the one that runs the task sets its
signal, and the runner stops the task's analyzers. A replica registers a task *before* it looks for the marker, so
a cancel is never lost between the two: either the marker is there when it looks, or the message comes after.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from shared.wire.messages import CancelRequest, decode_cancel
from shared.wire.subjects import CANCEL_ALL, cancel_key

log = logging.getLogger(__name__)


class CancelSignal:
    """Set once, with the reason, when a running task is to be cancelled."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.reason: str | None = None

    def cancel(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    async def wait(self) -> str:
        await self._event.wait()
        return self.reason or "cancelled"


class CancelRegistry:
    """The tasks this replica runs, each with its signal."""

    def __init__(self) -> None:
        self._signals: dict[str, CancelSignal] = {}

    def register(self, task_id: str) -> CancelSignal | None:
        """A new signal for `task_id`, or None when this replica already runs it (a redelivery meanwhile)."""
        if task_id in self._signals:
            return None
        signal = CancelSignal()
        self._signals[task_id] = signal
        return signal

    def unregister(self, task_id: str, signal: CancelSignal) -> None:
        if self._signals.get(task_id) is signal:
            del self._signals[task_id]

    def deliver(self, cancel: CancelRequest) -> bool:
        """Signal the task if it runs here; True when it did."""
        signal = self._signals.get(cancel.task_id)
        if signal is None:
            return False
        signal.cancel(cancel.reason)
        return True


async def listen(nc: Client, registry: CancelRegistry) -> Subscription:
    """Subscribe every replica to all cancel requests (core NATS; re-subscribed by the client after a reconnect)."""

    async def on_cancel(msg: Msg) -> None:
        try:
            cancel = decode_cancel(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            log.warning("ignored an invalid cancel request on %s: %s", msg.subject, error)
            return
        if registry.deliver(cancel):
            log.info("cancelling %s: %s", cancel.task_id, cancel.reason, extra={"task_id": cancel.task_id})

    return await nc.subscribe(CANCEL_ALL, cb=on_cancel)


async def cancel_marker(tasks: KeyValue, task_id: str) -> CancelRequest | None:
    """The cancel request recorded for a task that had not started yet, if any."""
    try:
        entry = await tasks.get(cancel_key(task_id))
    except NotFoundError:  # also a deleted key
        return None
    try:
        return decode_cancel(entry.value or b"")
    except (msgspec.DecodeError, msgspec.ValidationError):
        # The marker's presence is what counts; its body only adds the reason.
        return CancelRequest(task_id=task_id)
