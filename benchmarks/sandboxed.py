"""The CPU time of the processes in Assay's sandboxes (the apps and their preparation), which the kernel counts for
no one: sampled while they run.

A sandbox is bwrap with a pid namespace of its own, whose init reports the app's exit to bwrap and is then left to
the machine's init; a namespace's last processes are reaped by no one. So nothing of a sandbox reaches its
starter's count of waited-for children (benchmarks/cpu.py's figure of a role): without this, a dynamic study's
apps and their `pip install`s showed as "other work on the machine". A sandboxed process is one of a role's
descendants in a pid namespace nested in ours (two or more pids in its NSpid). A process still running at the end
is in its role's figure already and is left out here. One that ended is counted whole, to its last sample: what it
had spent when the study began was in its role's first figure, and is missing from the second. Its last sampling
interval is lost, and one that lived less than an interval is missed (an app's own processes live as long as the
app).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

INTERVAL_S = 0.2
SANDBOXED = "apps and their preparation"  # how a study names the sandboxes' CPU beside Assay's roles
TICKS_S = os.sysconf("SC_CLK_TCK")


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:  # the process ended meanwhile
        return ""


def _children(pid: int) -> list[int]:
    """The children of process `pid`, forked by any of its threads (the kernel lists them per thread)."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    return [
        int(child) for thread in threads for child in _read(f"/proc/{pid}/task/{thread}/children").split()
    ]


def _nested(pid: int) -> bool:
    """Whether process `pid` is in a pid namespace nested in ours (its NSpid names it in two or more)."""
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith("NSpid:"):
            return len(line.split()) > 2
    return False


def _cpu(pid: int) -> tuple[tuple[int, int], float] | None:
    """Process `pid`'s key (pid, start time in ticks) and its own CPU seconds (user + system), or None if gone."""
    fields = _read(f"/proc/{pid}/stat").rpartition(")")[2].split()
    if len(fields) < 20:
        return None
    # after the command: state is field 3 of stat(5), utime 14, stime 15, starttime 22
    return (pid, int(fields[19])), (int(fields[11]) + int(fields[12])) / TICKS_S


class SandboxSampler:
    """Samples the sandboxed descendants of `pids` every INTERVAL_S from `start()` to `stop()`, walking only their
    trees (not every process of the machine)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self._seen: dict[tuple[int, int], float] = {}  # (pid, start time) → CPU seconds when last sampled
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox sampler", daemon=True)

    def start(self) -> None:
        """Take the first sample (just before the roles' first figure) and go on in a thread."""
        self._sample()
        self._thread.start()

    def stop(self) -> float:
        """Stop sampling (just after the roles' second figure); the CPU seconds of the sandboxed processes that
        ended meanwhile."""
        self._done.set()
        self._thread.join()
        alive = self._sample()
        return sum(spent for key, spent in self._seen.items() if key not in alive)

    def _run(self) -> None:
        while not self._done.wait(INTERVAL_S):
            self._sample()

    def _sample(self) -> set[tuple[int, int]]:
        """Record each sandboxed descendant's CPU seconds; the keys of those sampled now."""
        sampled: set[tuple[int, int]] = set()
        pending = [child for pid in self.pids for child in _children(pid)]
        while pending:
            pid = pending.pop()
            pending.extend(_children(pid))
            reading = _cpu(pid) if _nested(pid) else None
            if reading is not None:
                self._seen[reading[0]] = reading[1]
                sampled.add(reading[0])
        return sampled
