"""The address-space limit of a tool run that reads untrusted input (pylint and mypy: the app's files and its
prepared virtualenv), so that one huge or pathological module ends that run, never the host.

The limit is RLIMIT_AS, set in the tool's own process: by the command line's child before it runs the tool
(`preexec`), by a warm server's forked child before its run (fork_server.py). Past it an allocation fails: CPython
raises MemoryError (which a tool may print, or turn into a message of its own), and native code aborts.
"""

from __future__ import annotations

import resource
from collections.abc import Callable

from shared.operations.process import ProcessOutcome

MB = 1024 * 1024
# How a run that hit the limit shows: a Python MemoryError (traceback or message), an allocator's own words
# (mypy's compiled parts and its Rust helpers abort with "memory allocation of N bytes failed"), or a death by a
# signal (SIGABRT after a failed native allocation, SIGSEGV after an unchecked one: mypy's compiled code does both).
SIGNS = ("MemoryError", "memory allocation of", "Cannot allocate memory", "std::bad_alloc")


def limit(memory_mb: int) -> None:
    """Cap this process's address space at `memory_mb` (its soft limit: the hard one stays, so a warm server's
    child can lift it again to send its answer); nothing for 0."""
    if memory_mb > 0:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        wanted = memory_mb * MB
        resource.setrlimit(resource.RLIMIT_AS, (wanted if hard < 0 else min(wanted, hard), hard))


def lift() -> None:
    """Lift the soft limit back to the hard one (a warm server's child, once its tool has run)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def preexec(memory_mb: int) -> Callable[[], None] | None:
    """What a child process runs before the tool: the limit (None without one)."""
    return (lambda: limit(memory_mb)) if memory_mb > 0 else None


def ran_out(outcome: ProcessOutcome) -> bool:
    """Whether a finished run shows the signs of its address space running out."""
    if outcome.timed_out:
        return False
    killed = outcome.exit_code is not None and outcome.exit_code < 0
    return killed or any(sign in outcome.stderr for sign in SIGNS)
