"""The load test's figures per URL, read from the performance run's metrics for the task view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec


class LoadView(msgspec.Struct, frozen=True, kw_only=True):
    """What the load test measured on one URL."""

    url: str
    requests: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p99_ms: float | None
    throughput_rps: float | None


def load_views(runs: Sequence[tuple[str, dict[str, Any]]]) -> list[LoadView]:
    """Per URL figures of the `load` tool, from (service, metrics) of the task's service runs."""
    views = []
    for service, metrics in runs:
        if service != "performance":
            continue
        for url, figures in sorted(((metrics.get("load") or {}).get("urls") or {}).items()):
            latency = figures.get("latency_ms") or {}
            views.append(
                LoadView(
                    url=url,
                    requests=int(figures.get("requests", 0)),
                    errors=int(figures.get("errors", 0)),
                    error_rate=float(figures.get("error_rate", 0.0)),
                    p50_ms=latency.get("p50"),
                    p99_ms=latency.get("p99"),
                    throughput_rps=figures.get("throughput_rps"),
                )
            )
    return views
