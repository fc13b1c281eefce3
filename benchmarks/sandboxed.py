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

import threading
from pathlib import Path

import psutil

INTERVAL_S = 0.2
SANDBOXED = "apps and their preparation"  # how a study names the sandboxes' CPU beside Assay's roles


def _nested(pid: int) -> bool:
    """Whether process `pid` is in a pid namespace nested in ours."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return len(line.split()) > 2
    except OSError:
        pass
    return False


class SandboxSampler:
    """Samples the sandboxed descendants of `pids` every INTERVAL_S from `start()` to `stop()`."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self._seen: dict[tuple[int, float], float] = {}  # (pid, start time) → CPU seconds when last sampled
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

    def _sample(self) -> set[tuple[int, float]]:
        """Record each sandboxed descendant's CPU seconds; the keys of those sampled now."""
        sampled: set[tuple[int, float]] = set()
        for pid in self.pids:
            try:
                family = psutil.Process(pid).children(recursive=True)
            except psutil.Error:
                continue
            for process in family:
                if not _nested(process.pid):
                    continue
                try:
                    with process.oneshot():
                        key = (process.pid, process.create_time())
                        times = process.cpu_times()
                except psutil.Error:
                    continue  # ended between the listing and the reading
                self._seen[key] = times.user + times.system
                sampled.add(key)
        return sampled
