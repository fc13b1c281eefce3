"""The one load generator of the pipeline benchmark, for Assay and Celery alike: async httpx over loopback.

`burst` is closed-loop (a fixed number of requests in flight, as fast as the endpoint answers: saturation);
`at_rate` is open-loop (request i leaves at start + i / rate whatever the answers do: latency at an offered load).
Each accepted request is kept with the wall-clock time its 202 arrived, the start of its accept → persisted time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

REQUEST_TIMEOUT_S = 30.0


@dataclass
class Submission:
    """What a load run got back: accepted task ids with their accept time (epoch seconds), and refusals."""

    accepted: dict[str, float] = field(default_factory=dict)
    refused: int = 0
    last_error: str = ""

    @property
    def first_accept(self) -> float | None:
        return min(self.accepted.values(), default=None)


def body(priority: str) -> dict[str, Any]:
    """A no-op analysis request at `priority` (see benchmarks/noop_analyzer.py for why `static` and `ruff`)."""
    return {
        "model_slug": "bench",
        "app_number": 1,
        "analysis_type": "static",
        "tools": ["ruff"],
        "priority": priority,
    }


async def _submit(client: httpx.AsyncClient, url: str, payload: dict[str, Any], into: Submission) -> None:
    try:
        response = await client.post(url, json=payload)
    except httpx.HTTPError as error:
        into.refused += 1
        into.last_error = f"{type(error).__name__}: {error}"
        return
    if response.status_code == 202:
        into.accepted[response.json()["task_id"]] = time.time()
    else:
        into.refused += 1
        into.last_error = f"HTTP {response.status_code}: {response.text[:200]}"


def _client(connections: int, headers: dict[str, str]) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits, headers=headers, trust_env=False)


async def burst(
    url: str,
    headers: dict[str, str],
    payload: dict[str, Any],
    count: int,
    in_flight: int = 32,
    time_limit_s: float = float("inf"),
) -> Submission:
    """Send `count` requests, `in_flight` at a time, each as soon as a previous one is answered; no new request
    leaves after `time_limit_s` (a system that accepts slowly is not waited for without end)."""
    submission = Submission()
    queue = iter(range(count))
    deadline = time.monotonic() + time_limit_s

    async def sender(client: httpx.AsyncClient) -> None:
        for _ in queue:
            if time.monotonic() > deadline:
                return
            await _submit(client, url, payload, submission)

    async with _client(in_flight, headers) as client:
        await asyncio.gather(*(sender(client) for _ in range(in_flight)))
    return submission


async def at_rate(
    url: str, headers: dict[str, str], payload: dict[str, Any], rate: float, duration_s: float
) -> Submission:
    """Offer `rate` requests per second for `duration_s`, each on schedule, without waiting for earlier answers."""
    submission = Submission()
    count = round(rate * duration_s)
    async with _client(max(64, round(rate * 4)), headers) as client:
        start = time.monotonic()
        sends = []
        for index in range(count):
            await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
            sends.append(asyncio.create_task(_submit(client, url, payload, submission)))
        await asyncio.gather(*sends)
    return submission
