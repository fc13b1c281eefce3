"""The benchmark's service processes: started in their own session with a log file each, and measured with their
children (tests/support/processes.py waits for them to listen and stops them)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent


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
