"""Stopping a subprocess together with everything it started: it runs in its own session (process group), and the
whole group gets SIGTERM, then SIGKILL for whatever lingers. Used for tool processes and for the supervisor's
services alike."""

from __future__ import annotations

import asyncio
import os
import signal


def signal_group(pid: int, sig: int) -> None:
    """Send `sig` to the process group led by `pid`; a group that is already gone is not an error."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


async def stop_group(process: asyncio.subprocess.Process, grace_s: float) -> bool:
    """SIGTERM the group, wait up to `grace_s` for its leader, then SIGKILL the group; True if the leader had to be
    killed. A leader that already exited still gets its leftover children killed."""
    killed = False
    if process.returncode is None:
        signal_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace_s)
        except TimeoutError:
            killed = True
    signal_group(process.pid, signal.SIGKILL)
    await process.wait()
    return killed
