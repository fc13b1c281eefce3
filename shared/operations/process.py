"""Tool subprocesses: argument lists (no shell), their own process group, a timeout, and a clean kill.

Each tool runs in a new session so that cancelling or timing out kills everything it started (semgrep, for one,
spawns helpers), not just the direct child; and ends when the process that started it is killed (parent_death.py).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import msgspec

from shared.operations.parent_death import die_with_parent
from shared.operations.process_groups import stop_group

KILL_GRACE_S = 0.5  # SIGTERM first; whatever is left after this gets SIGKILL


class ProcessOutcome(msgspec.Struct, frozen=True, kw_only=True):
    argv: list[str]
    exit_code: int | None  # None when it was killed on timeout
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    cpu_s: float | None = None  # user + system seconds, where the runner could count them (a warm tool's run)
    apps: int = 1  # apps the process analyzed: several for a coalesced run (its output split back per app)


async def run_process(
    argv: list[str],
    *,
    cwd: Path | None = None,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    preexec: Callable[[], None] | None = None,
) -> ProcessOutcome:
    """Run `argv` to completion or until `timeout_s`; cancelling the caller kills the whole process group.
    `preexec` runs in the child before `argv` does (a resource limit: nothing that takes a lock)."""
    started = time.monotonic()
    parent = os.getpid()

    def in_child() -> None:
        die_with_parent(parent)  # a killed analyzer leaves no tool running
        if preexec is not None:
            preexec()

    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=in_child,
    )
    timed_out = False
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout_s)
    except TimeoutError:
        timed_out = True
        await stop_group(process, KILL_GRACE_S)
        stdout, stderr = b"", b""
    except asyncio.CancelledError:
        await asyncio.shield(stop_group(process, KILL_GRACE_S))
        raise
    return ProcessOutcome(
        argv=list(argv),
        exit_code=None if timed_out else process.returncode,
        stdout=stdout.decode(errors="replace"),
        stderr=stderr.decode(errors="replace"),
        duration_s=round(time.monotonic() - started, 3),
        timed_out=timed_out,
    )
