"""Processes the tests and benchmarks start: waited for until they listen on their own socket (found through /proc,
not whatever answers the port: a free port chosen here may be taken meanwhile by another test worker's process),
and stopped by group; and the processes below one, read from /proc. Shared by the tests' stacks and the benchmarks'
systems."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
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


def proc_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of its /proc/<pid>/stat after the command name: state, parent, group …) of every process."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                yield int(entry.name), (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue


def descendants(pid: int) -> set[int]:
    """Live processes below `pid` (by parent pid), read from /proc."""
    parents = {child: int(fields[1]) for child, fields in proc_stats() if fields[0] != "Z"}
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of `pids` still running (a zombie no one reaps, as a container's init may not, runs no more)."""
    living = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living
