"""Latency and error statistics of one URL's load run."""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from services.analyzers.performance.load import Samples


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between closest ranks (numpy's default method);
    None for no values."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0-100, not {q}")
    if not values:
        return None
    ordered = sorted(values)  # linear on already sorted input
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class Latency(msgspec.Struct, kw_only=True):
    """Milliseconds, over the requests that got an HTTP answer; all None when none did."""

    min: float | None = None
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None


class UrlStats(msgspec.Struct, kw_only=True):
    """What the metrics show for one URL."""

    requests: int  # issued
    completed: int  # answered or failed in transport (== requests unless cut off by cancellation)
    errors: int  # HTTP status >= 400 and transport failures
    error_rate: float
    status_counts: dict[str, int]  # HTTP status → count
    transport_errors: dict[str, int]  # exception name → count
    latency_ms: Latency
    throughput_rps: float
    duration_s: float
    bytes: int
    stopped_by: str


def latency(values: Sequence[float]) -> Latency:
    if not values:
        return Latency()
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(percentile(ordered, q) or 0.0, 3)

    return Latency(
        min=round(ordered[0], 3),
        mean=round(sum(ordered) / len(ordered), 3),
        p50=at(50),
        p90=at(90),
        p99=at(99),
        max=round(ordered[-1], 3),
    )


def summarize(samples: Samples) -> UrlStats:
    """Fold one URL's samples into its statistics."""
    answered = sum(samples.status_counts.values())
    failed_transport = sum(samples.transport_errors.values())
    completed = answered + failed_transport
    errors = failed_transport + sum(count for status, count in samples.status_counts.items() if status >= 400)
    return UrlStats(
        requests=samples.issued,
        completed=completed,
        errors=errors,
        error_rate=round(errors / completed, 4) if completed else 0.0,
        status_counts={str(status): count for status, count in sorted(samples.status_counts.items())},
        transport_errors=dict(samples.transport_errors),
        latency_ms=latency(samples.latencies_ms),
        throughput_rps=round(completed / samples.elapsed_s, 2) if samples.elapsed_s > 0 else 0.0,
        duration_s=round(samples.elapsed_s, 3),
        bytes=samples.bytes_received,
        stopped_by=samples.stopped_by,
    )
