"""CPU seconds each process of a system spent over one load run, read from the kernel's counters with psutil.

CPU per task (user + system time of a role over a run, divided by the tasks it persisted) stays meaningful on a
machine shared with other work, where wall-clock throughput does not: a busy neighbour makes a run slower, not
each task costlier. A role's figure includes its live children (the Celery worker's pool processes) and the
children it has waited for.
"""

from __future__ import annotations

import psutil

from benchmarks.processes import tree_total


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


def cpu_snapshot(roles: dict[str, int]) -> dict[str, float]:
    """Each role's CPU seconds so far (role → pid in, role → seconds out)."""
    return {role: tree_total(pid, _cpu_s) for role, pid in roles.items()}


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds of each role between two snapshots (roles that were not running at both are left out)."""
    return {role: after[role] - before[role] for role in after if role in before}


def machine_idle_s() -> float:
    """Seconds the machine's cores have sat idle since boot, summed over the cores (idle and waiting on I/O): what
    was left of them after every process on the machine, Assay's and everyone else's, had its share."""
    times = psutil.cpu_times()
    return float(times.idle + getattr(times, "iowait", 0.0))
