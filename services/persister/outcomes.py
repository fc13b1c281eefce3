"""What handling one message can end in besides a plain ack, and what the handler is told about the delivery."""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import StorageError


@dataclass(frozen=True)
class Delivery:
    """The facts of one delivery that handlers act on, without knowing NATS."""

    subject: str
    deliveries: int  # 1 on the first delivery
    trace_id: str | None  # of the incoming traceparent header, when there is one


@dataclass(frozen=True)
class Retry:
    """Not yet: hand the message back to be delivered again after `delay_s`."""

    delay_s: float
    reason: str


class PoisonMessage(StorageError):
    """A message no retry can fix (undecodable, invalid, corrupt): it goes to the DLQ at once."""
