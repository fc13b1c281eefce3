"""Staging: each service's full outcome, kept between its `service` event and the task's terminal event.

The database holds the rows a query needs; the result folder also needs what the rows leave out (SARIF, raw
outputs). Keeping that in memory would lose it on a restart, so each service's outcome is stored, encoded, in its
`service_runs` row (`staged_result`), in the same transaction as the rest of its rows: committed together with the
other messages of its group, with no file, fsync or thread hand-off of its own. The terminal event reads it back
to write the folder, and the outcome's transaction clears it.
"""

from __future__ import annotations

import re

import msgspec

from shared.store.paths import UnsafePathError
from shared.wire.protocol import ServiceResult

SERVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class StagedService(msgspec.Struct, kw_only=True):
    """One service's outcome as the task's result folder will show it."""

    service: str
    status: str
    error: str | None = None
    event_id: str
    result: ServiceResult | None = None  # None when the service failed without producing anything


_DECODER = msgspec.json.Decoder(StagedService)


def check_service_name(service: str) -> str:
    """A service name that is safe as a file name; anything else is refused (UnsafePathError)."""
    if not SERVICE_NAME_RE.match(service):
        raise UnsafePathError(
            f"service name {service!r} is not allowed: use 1-32 lowercase letters, digits, '_' or '-'"
        )
    return service


def encode(staged: StagedService) -> bytes:
    """`staged` as stored in its service run."""
    return msgspec.json.encode(staged)


def decode(data: bytes) -> StagedService:
    """A stored outcome back (raises msgspec.DecodeError for bytes that are not one)."""
    return _DECODER.decode(data)
