"""A cancel that a library swallowed, raised again.

On Python 3.11, `asyncio.wait_for` returns its result instead of raising when a cancel arrives in the same loop
iteration as that result (fixed in 3.12). nats-py's request and JetStream publish wait that way, so a task cancelled
while one of them completes would run on as if never asked to stop, e.g. an analyzer run that holds until shutdown.
The task still counts the cancel request (`Task.cancelling()`), which is how it is found.
"""

from __future__ import annotations

import asyncio


def raise_swallowed_cancel() -> None:
    """Raise CancelledError when the current task was asked to stop and is still running normally.

    Call it right after awaiting a library call that may swallow a cancel, and only on a normal path: code that
    runs while handling a cancel (cleanup in `except CancelledError`) is expected to see the request pending.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
