"""A results disk that refuses a write (permissions, full, read-only) is tried again, with backoff, for a while.

Such a failure is usually fixed by an operator within minutes (space freed, a mount or a permission repaired), so
the persister keeps the message (the consumer loop keeps it alive meanwhile) and tries again after 1, 2, 4 … 30 s,
up to ASSAY_RESULTS_WRITE_LIMIT_S; only then does it give up, and the caller fails the task with the reason.
The writes themselves are atomic (`folders`, `staging`), so a failed attempt leaves nothing half written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from shared.jetstream.delivery import backoff_s
from shared.operations.errors import StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")


class ResultsUnwritable(StorageError):
    """The results disk refused a write for longer than the limit; the message says what and why."""


async def persistently(what: str, write: Callable[[], Awaitable[T]], limit_s: float, task_id: str) -> T:
    """`write()`, tried again after an OSError with backoff until `limit_s` has passed; then ResultsUnwritable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    attempts = 0
    while True:
        try:
            return await write()
        except OSError as error:
            attempts += 1
            delay = backoff_s(attempts)
            reason = f"{what}: {error.strerror or error}" + (f" ({error.filename})" if error.filename else "")
            if loop.time() + delay > deadline:
                raise ResultsUnwritable(
                    f"{reason}; gave up after {attempts} attempts in {limit_s:g} s (ASSAY_RESULTS_WRITE_LIMIT_S)"
                ) from error
            log.warning(
                "%s; trying again in %.0f s (make the results folder writable, or free space)",
                reason,
                delay,
                extra={"task_id": task_id, "attempt": attempts},
            )
            await asyncio.sleep(delay)
