"""Processes the tests and benchmarks start: waited for until they listen on their own socket (found through /proc,
not whatever answers the port: a free port chosen here may be taken meanwhile by another test worker's process),
and stopped by group. Shared by the tests' stacks and the benchmarks' systems."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from services.orchestrator.apps.listening import listening
from shared.operations.process_groups import signal_group


class ServiceDidNotStart(RuntimeError):
    """A started process exited or did not listen in time; the message holds its log's tail."""


def log_tail(log: Path, chars: int = 2000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], log: Path | None = None, timeout_s: float = 60.0
) -> None:
    """Return once `process` (or a process it started) listens on `port`; raise if it exits first.

    Its own listener, not any: a free port chosen here may be taken meanwhile by a process of another test worker,
    whose answers would then be read as this one's."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceDidNotStart(f"{process.args!r} exited with {process.returncode}:\n{_tail(log)}")
        if any(listener.port == port for listener in listening(process.pid)):
            return
        time.sleep(0.05)
    raise ServiceDidNotStart(f"{process.args!r} did not listen on {port} in {timeout_s} s:\n{_tail(log)}")


def _tail(log: Path | None) -> str:
    return log_tail(log) if log else "(its output was not kept)"


def stop(process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """SIGTERM the process's group (it was started in its own session), then SIGKILL whatever is left of it."""
    if process.poll() is None:
        signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
    signal_group(process.pid, signal.SIGKILL)
    process.wait(timeout=timeout_s)
