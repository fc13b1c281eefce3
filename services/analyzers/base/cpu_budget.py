"""An analyzer's CPU budget: a fixed number of slots for tool work, shared by every run of the analyzer process.

A study queues many tasks at once, and each of their tools waits here for a slot, so this is where a task's
priority has to hold: a freed slot goes to the waiting tool of the most urgent request, and among equals to the one
that has waited longest (an `asyncio.Semaphore` would serve them in arrival order only, and an urgent request would
wait behind every tool of the study queued before it).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from shared.wire.tasks import PRIORITIES, Priority

RANKS: dict[str, int] = {priority: rank for rank, priority in enumerate(PRIORITIES)}


class CpuBudget:
    """`slots` slots; `acquire(priority)` waits for one, `release()` hands it to the most urgent waiter."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = slots
        self._order = itertools.count()
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []

    @property
    def waiting(self) -> int:
        return sum(1 for _rank, _order, future in self._waiters if not future.done())

    async def acquire(self, priority: Priority = "normal") -> None:
        """Take a slot, waiting behind more urgent (or as urgent and earlier) requests while none is free."""
        if self._free > 0 and not self.waiting:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (RANKS.get(priority, len(RANKS)), next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # handed a slot just as it was cancelled: pass it on
                self.release()
            raise

    def release(self) -> None:
        """Give the slot back: to the most urgent waiter still waiting, else to the pool."""
        while self._waiters:
            _rank, _order, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self._free += 1
