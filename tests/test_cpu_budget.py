"""The analyzer's CPU budget hands a freed slot to the most urgent waiting tool, then to the one waiting longest, and
a tool cancelled while it waits never holds a slot."""

from __future__ import annotations

import asyncio

from services.analyzers.base.cpu_budget import CpuBudget
from shared.wire.tasks import Priority


async def test_a_freed_slot_goes_to_the_most_urgent_waiter_then_the_earliest() -> None:
    budget = CpuBudget(1)
    await budget.acquire("low")  # a study's tool holds the only slot
    served: list[str] = []

    async def tool(name: str, priority: Priority) -> None:
        await budget.acquire(priority)
        served.append(name)

    waiting = []
    order: list[tuple[str, Priority]] = [
        ("low-1", "low"),
        ("normal-1", "normal"),
        ("low-2", "low"),
        ("urgent", "urgent"),
        ("high", "high"),
        ("normal-2", "normal"),
    ]
    for name, priority in order:
        waiting.append(asyncio.create_task(tool(name, priority)))
        await asyncio.sleep(0)
    assert budget.waiting == 6 and served == []
    for _ in waiting:
        budget.release()
        await asyncio.sleep(0)
    assert served == ["urgent", "high", "normal-1", "normal-2", "low-1", "low-2"]


async def test_two_slots_serve_two_at_once_and_a_cancelled_waiter_takes_none() -> None:
    budget = CpuBudget(2)
    await budget.acquire()
    await budget.acquire()
    gave_up = asyncio.create_task(budget.acquire("urgent"))
    later = asyncio.create_task(budget.acquire("low"))
    await asyncio.sleep(0)
    gave_up.cancel()
    await asyncio.sleep(0)
    budget.release()
    await asyncio.wait_for(later, 1)  # the slot went past the cancelled waiter
    budget.release()
    budget.release()
    await asyncio.wait_for(budget.acquire(), 1)
    await asyncio.wait_for(budget.acquire(), 1)
    assert budget.waiting == 0


async def test_a_waiter_cancelled_as_it_is_handed_a_slot_passes_it_on() -> None:
    budget = CpuBudget(1)
    await budget.acquire()
    first = asyncio.create_task(budget.acquire("urgent"))
    second = asyncio.create_task(budget.acquire("normal"))
    await asyncio.sleep(0)
    budget.release()  # handed to `first`, which is cancelled before it runs
    first.cancel()
    await asyncio.wait_for(second, 1)
    assert first.cancelled()
