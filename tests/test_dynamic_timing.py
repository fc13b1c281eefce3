"""Delays proven by alternation (services/analyzers/dynamic/timing.py), against a real HTTP server on loopback: an
input that makes the server wait is proven, scaled work included, and a slowdown of the whole server that ignores
the input (a loaded machine) is not taken for one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx

from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import Attack
from services.analyzers.dynamic.timing import LATE_S, TIMEOUT_S, Delay, proven_delay
from services.analyzers.running_app.targets import Sites
from tests.support.query_server import query_server

Wait = Callable[[int], float]  # the amount a request asks for → the seconds the server waits


def server(wait: Wait) -> AbstractAsyncContextManager[str]:
    async def answer(query: dict[str, list[str]]) -> bytes:
        await asyncio.sleep(wait(int(query["n"][0])))
        return b"ok"

    return query_server(answer)


async def measure(wait: Wait, first: int, none: int, most: int | None) -> Delay | None:
    async with server(wait) as base, httpx.AsyncClient() as client:
        attacker = Attacker(client, Sites(bases={"backend": base}), max_requests=40, max_s=120)

        async def send(amount: int) -> Sent:
            return await attacker.send(
                Attack(method="GET", target="backend", path=f"/?n={amount}", timeout_s=TIMEOUT_S)
            )

        baseline = await send(none)
        return await proven_delay(send, first, none, baseline_s=baseline.elapsed_s, most=most)


async def test_an_input_that_sleeps_is_proven_with_the_slowest_light_and_quickest_heavy_answer() -> None:
    delay = await measure(lambda seconds: float(seconds), 3, 0, None)
    assert delay is not None
    assert delay.amount == 3 and delay.late_s >= LATE_S
    quick, slow = delay.proof
    assert quick.attack.path == "/?n=0" and slow.attack.path == "/?n=3"


async def test_work_is_scaled_from_a_short_first_measurement_and_stays_within_its_bound() -> None:
    # a million rows of work take half a second here: the first answer is too short to prove anything alone
    delay = await measure(lambda rows: rows / 2_000_000, 1_000_000, 1, 20_000_000)
    assert delay is not None
    assert 1_000_000 < delay.amount <= 20_000_000 and delay.late_s >= LATE_S


def burst() -> Wait:
    """From the second request on (the first heavy one), four seconds in which every answer is 3 s late."""
    seen: list[float] = []

    def wait(_: int) -> float:
        seen.append(time.monotonic())
        return 3.0 if len(seen) > 1 and seen[-1] < seen[1] + 4 else 0.0

    return wait


async def test_a_slowdown_of_the_whole_server_that_ignores_the_input_is_not_a_delay() -> None:
    """A load burst begins with the first heavy request: that answer is late, but so are the light answers sent
    after it, and the next heavy one is not."""
    assert await measure(burst(), 3, 0, None) is None
    assert await measure(burst(), 1_000_000, 1, 20_000_000) is None
