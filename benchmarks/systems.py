"""The systems under test, kept running between load runs: started on first use, warmed up with a few tasks, and
restarted (fresh folder) after a run that did not finish, so no backlog spills into the next run."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from benchmarks.load import Submission, body, burst
from benchmarks.persisted import persisted_count, wait_persisted
from benchmarks.trial import Trial

WARM_UP_TASKS = 5
WARM_UP_TIMEOUT_S = 120.0


class System(Protocol):
    label: str
    database_url: str
    headers: dict[str, str]  # sent with every request (Assay's API token)

    @property
    def submit_url(self) -> str: ...

    def roles(self) -> dict[str, int]: ...

    def start(self, timeout_s: float = 90.0) -> None: ...

    def stop(self) -> None: ...


class SystemFailed(RuntimeError):
    """A system did not persist its warm-up tasks: the benchmark cannot measure it."""


Factory = Callable[[Path], System]


class Systems:
    """Running systems by name, each made by its factory in a fresh folder under `root`."""

    def __init__(self, root: Path, factories: dict[str, Factory]) -> None:
        self.root = root
        self.factories = factories
        self.running: dict[str, System] = {}
        self.folders: dict[str, Path] = {}
        self.starts = 0

    def roles(self) -> dict[str, int]:
        """Every running process, as `<system> <role>` → pid (for the RSS sampler)."""
        return {
            f"{name} {role}": pid
            for name, system in list(self.running.items())
            for role, pid in system.roles().items()
        }

    async def get(self, name: str) -> System:
        """The running system `name`, started and warmed up if it is not running."""
        if name in self.running:
            return self.running[name]
        self.starts += 1
        folder = self.folders[name] = self.root / f"{name}-{self.starts}"
        system = self.factories[name](folder)
        try:
            await asyncio.to_thread(system.start)
            self.running[name] = system
            warm = await run_load(
                system,
                burst(system.submit_url, system.headers, body("normal"), WARM_UP_TASKS),
                WARM_UP_TIMEOUT_S,
                60,
            )
        except BaseException:
            await self.discard(name, system)
            raise
        if not warm.complete:
            await self.discard(name, system)
            raise SystemFailed(
                f"{system.label} did not persist {WARM_UP_TASKS} warm-up tasks; logs in {folder / 'logs'}"
            )
        return system

    async def discard(self, name: str, system: System | None = None) -> None:
        """Stop `name` and delete its bulky folders (results, NATS store); its logs and database stay for a look.
        The next `get` starts a fresh one."""
        system = self.running.pop(name, None) or system
        if system is not None:
            await asyncio.to_thread(system.stop)
        folder = self.folders.pop(name, None)
        if folder is not None:
            for bulky in ("results", "nats"):
                await asyncio.to_thread(shutil.rmtree, folder / bulky, True)

    async def stop_all(self) -> None:
        for name in list(self.running):
            await self.discard(name)


async def run_load(
    system: System, load: Coroutine[Any, Any, Submission], timeout_s: float, stall_s: float
) -> Trial:
    """Run `load` (a load generator coroutine) against `system` and wait, bounded, for its tasks to persist."""
    already = await persisted_count(system.database_url)
    started = time.monotonic()
    submission = await load
    left = max(1.0, timeout_s - (time.monotonic() - started))
    persisted = await wait_persisted(system.database_url, list(submission.accepted), already, left, stall_s)
    return Trial(submission=submission, persisted=persisted, waited_s=time.monotonic() - started)
