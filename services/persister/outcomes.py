"""What a persister handler raises for a message no retry can fix (the consumer gives it up to the DLQ)."""

from __future__ import annotations


class PoisonMessage(ValueError):
    """A message no retry can fix (undecodable, invalid, corrupt): it goes to the DLQ at once."""
