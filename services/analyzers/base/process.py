"""Tool subprocesses: argument lists (no shell), their own process group, a timeout, and a clean kill.

Each tool runs in a new session so that cancelling or timing out kills everything it started (semgrep, for one,
spawns helpers), not just the direct child.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path

import msgspec

KILL_GRACE_S = 0.5  # SIGTERM first; whatever is left after this gets SIGKILL


class ProcessOutcome(msgspec.Struct, frozen=True, kw_only=True):
    argv: list[str]
    exit_code: int | None  # None when it was killed on timeout
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Terminate the process group, then kill it if it lingers."""
    if process.returncode is not None:
        _signal_group(process.pid, signal.SIGKILL)  # the leader is gone; its children may not be
        return
    _signal_group(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), KILL_GRACE_S)
    except TimeoutError:
        pass
    _signal_group(process.pid, signal.SIGKILL)
    await process.wait()


async def run_process(
    argv: list[str],
    *,
    cwd: Path | None = None,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
) -> ProcessOutcome:
    """Run `argv` to completion or until `timeout_s`; cancelling the caller kills the whole process group."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    timed_out = False
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout_s)
    except TimeoutError:
        timed_out = True
        await _stop(process)
        stdout, stderr = b"", b""
    except asyncio.CancelledError:
        await asyncio.shield(_stop(process))
        raise
    return ProcessOutcome(
        argv=list(argv),
        exit_code=None if timed_out else process.returncode,
        stdout=stdout.decode(errors="replace"),
        stderr=stderr.decode(errors="replace"),
        duration_s=round(time.monotonic() - started, 3),
        timed_out=timed_out,
    )
