"""Bootstrap confidence intervals of a mean (percentile method), deterministic for a given seed."""

from __future__ import annotations

import random
from collections.abc import Sequence

RESAMPLES = 1000
LEVEL = 0.95


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def bootstrap_interval(
    values: Sequence[float], seed: str, resamples: int = RESAMPLES, level: float = LEVEL
) -> tuple[float, float]:
    """(low, high) of the `level` percentile interval of the mean of `values`, from `resamples` resamples with
    replacement; the same values and seed always give the same interval. One value: its own interval."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (0.0, 0.0)
    draw = random.Random(seed).choices
    n = len(values)
    means = sorted(sum(draw(values, k=n)) / n for _ in range(resamples))
    tail = (1.0 - level) / 2
    return means[int(tail * (resamples - 1))], means[int(round((1.0 - tail) * (resamples - 1)))]
