"""A child that ends with its parent: Linux's parent-death signal (prctl PR_SET_PDEATHSIG), set in a child between
its fork and its exec. A tool process runs in a session of its own so that its group can be stopped as one; the
cost is that nothing ends it when the analyzer that started it is killed (-9, the OOM killer), and it would go on
using a core for a run nobody waits for, beside the restarted analyzer's rerun of it.

The supervisor of `assay up` asks SIGTERM for its services, so that a killed supervisor leaves none running (each
drains, as on a stop). The signal comes when the *thread* that forked the child ends: call it in children forked
by a thread that lives as long as its process (an event loop's, a server's main thread)."""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # prctl(2)


def _load_prctl() -> Callable[..., int] | None:
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: children outlive a killed parent there
        return None
    return prctl


_prctl = _load_prctl()  # loaded before any fork: the child only calls it


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> None:
    """In the child: `sig` (SIGKILL; SIGTERM for a service that should drain) when `parent` (the pid that forked it,
    read before the fork) ends; ends at once when it already has. Async-signal-safe enough for a preexec function:
    no lock, no allocation of note."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() != parent:  # the parent ended before the signal was asked for
        os._exit(1)
