"""Peak resident memory of each process of a system, sampled in a background thread while the benchmark runs.

A role's figure is the process's RSS plus its children's (the Celery worker's pool processes count with it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from benchmarks.processes import tree_total

INTERVAL_S = 0.25


def _tree_rss(pid: int) -> int:
    return int(tree_total(pid, lambda process: process.memory_info().rss))


class PeakRss:
    """`with PeakRss(roles) as peaks:` samples `roles()` (role → pid) until the block ends; `peaks` maps role →
    the highest RSS seen, in bytes. Roles may come and go (systems restart)."""

    def __init__(self, roles: Callable[[], dict[str, int]]) -> None:
        self.roles = roles
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                roles = self.roles()
            except RuntimeError:  # a system changed its process table while we read it: next tick
                roles = {}
            for role, pid in roles.items():
                self.peaks[role] = max(self.peaks.get(role, 0), _tree_rss(pid))
            self._stop.wait(INTERVAL_S)

    def __enter__(self) -> dict[str, int]:
        self._thread.start()
        return self.peaks

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
