"""A cancel that `asyncio.wait_for` swallowed (Python 3.11) is raised again by `raise_swallowed_cancel`."""

from __future__ import annotations

import asyncio

from shared.jetstream.cancel_safety import raise_swallowed_cancel


async def wait_then_check(result: asyncio.Future[int], reached: list[str]) -> None:
    await asyncio.wait_for(result, 10)  # as nats-py's publish waits for its ack
    reached.append("after wait_for")
    raise_swallowed_cancel()
    reached.append("after the check")


async def test_a_cancel_arriving_as_the_wait_completes_stops_the_task() -> None:
    result: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    reached: list[str] = []
    task = asyncio.create_task(wait_then_check(result, reached))
    await asyncio.sleep(0)  # the task now waits inside wait_for
    result.set_result(1)  # the ack and the cancel arrive in the same loop iteration
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert "after the check" not in reached


async def test_a_task_not_asked_to_stop_goes_on() -> None:
    result: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    reached: list[str] = []
    task = asyncio.create_task(wait_then_check(result, reached))
    await asyncio.sleep(0)
    result.set_result(1)
    await task
    assert reached == ["after wait_for", "after the check"]
