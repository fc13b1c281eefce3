"""The benchmark's service processes: started in their own session with a log file each, waited for on a port,
stopped by pid (SIGTERM to the group, SIGKILL when it lingers), and measured with their children. Every wait is
bounded."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import psutil

from shared.operations.process_groups import signal_group

REPO = Path(__file__).resolve().parent.parent


class ServiceDidNotStart(RuntimeError):
    """A process of the benchmark exited or did not listen in time; the message holds its log's tail."""


def log_tail(log: Path, chars: int = 2000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


def spawn(argv: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `argv` from the repository root in a new session, its output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        return subprocess.Popen(
            argv, cwd=REPO, env=dict(env), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def spawn_module(module: str, args: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m <module> <args>` with this interpreter."""
    return spawn([sys.executable, "-m", module, *args], env, log)


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> None:
    """Return once something accepts connections on 127.0.0.1:`port`; raise if `process` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceDidNotStart(f"{process.args!r} exited with {process.returncode}:\n{log_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise ServiceDidNotStart(f"{process.args!r} did not listen on {port} in {timeout_s} s:\n{log_tail(log)}")


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


def tree_total(pid: int, measure: Callable[[psutil.Process], float]) -> float:
    """`measure` summed over the process `pid` and its live children (0 when it is gone)."""
    try:
        process = psutil.Process(pid)
        family = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for member in family:
        try:
            total += measure(member)
        except psutil.Error:
            continue  # exited between the listing and the reading
    return total
