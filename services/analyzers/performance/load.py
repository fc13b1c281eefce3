"""The load generator: `concurrency` asyncio workers sending GETs to one URL.

A bounded loop: workers stop taking new requests once `requests` have been issued or `duration_s` has passed,
whichever comes first; a request already in flight at that moment finishes (bounded by the client's timeout) so
that the slowest answers are not dropped from the statistics. Cancellation stops everything at once: in-flight
requests are abandoned and their connections closed.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import msgspec

from services.analyzers.running_app.client import describe_error


class Samples(msgspec.Struct, kw_only=True):
    """What one URL's run observed. The caller owns it, so a run cut short still leaves what it measured."""

    url: str
    latencies_ms: list[float] = []
    status_counts: dict[int, int] = {}
    transport_errors: dict[str, int] = {}
    bytes_received: int = 0
    issued: int = 0
    elapsed_s: float = 0.0
    stopped_by: str = "requests"  # or "duration"


async def _one_request(client: httpx.AsyncClient, samples: Samples) -> None:
    started = time.perf_counter()
    try:
        async with client.stream("GET", samples.url) as response:
            size = 0
            async for chunk in response.aiter_raw():
                size += len(chunk)
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        name = describe_error(error).split(":", 1)[0]
        samples.transport_errors[name] = samples.transport_errors.get(name, 0) + 1
        return
    samples.latencies_ms.append((time.perf_counter() - started) * 1000.0)
    samples.status_counts[response.status_code] = samples.status_counts.get(response.status_code, 0) + 1
    samples.bytes_received += size


async def generate_load(
    client: httpx.AsyncClient, samples: Samples, *, requests: int, concurrency: int, duration_s: float
) -> Samples:
    """Send up to `requests` GETs to `samples.url`, `concurrency` at a time, for at most `duration_s`."""
    started = time.monotonic()
    deadline = started + duration_s

    async def worker() -> None:
        while samples.issued < requests:
            if time.monotonic() >= deadline:
                samples.stopped_by = "duration"
                return
            samples.issued += 1  # counted before the await: workers share the budget without a lock
            await _one_request(client, samples)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, requests)):
                group.create_task(worker())
    finally:
        samples.elapsed_s = time.monotonic() - started
    return samples
