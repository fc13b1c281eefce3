"""Confidence intervals: Wilson's score interval of a share of apps, and bootstrap intervals (percentile method,
deterministic for a given seed) of a mean or of a pooled rate over apps.

Below MIN_APPS apps no interval is given at all ("too few apps"): with one app a bootstrap interval has no width and
with two it is the two apps' values, and a share of a handful of apps is compatible with most of [0, 1] anyway.
Wilson's interval keeps close to its nominal coverage from about ten apps on, also for shares near 0 or 1.
"""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Sequence

RESAMPLES = 1000
LEVEL = 0.95
# Above this many values the bootstrap distribution of a mean is normal to within its resampling noise (central
# limit theorem; for skewed app scores at n = 100 the endpoints differ by about 0.1 standard error, as much as
# 1,000 resamples vary between seeds), so its closed form (mean ± z · plug-in standard deviation / √n) replaces the
# resampling, whose cost grows with values × resamples (40 groups of 500 apps took 2 s of CPU).
RESAMPLED_UP_TO = 100
Z = {0.90: 1.6449, 0.95: 1.9600, 0.99: 2.5758}
MIN_APPS = 10  # fewer apps (with a known answer, or a known size): no interval, "too few apps"
TOO_FEW = f"too few apps for an interval (fewer than {MIN_APPS})"


def wilson_interval(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """(low, high) of Wilson's score interval of the share successes / n (n > 0)."""
    z = Z[level]
    share = successes / n
    denominator = 1 + z * z / n
    center = (share + z * z / (2 * n)) / denominator
    spread = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, center - spread), min(1.0, center + spread)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def resample_indices(n: int, rng: random.Random, resamples: int) -> list[int]:
    """`resamples` draws of n indices below n with replacement, one after another in one list.

    Indices come from 32-bit random words scaled to the range (`word * n >> 32`, bias below n / 2**32), every step
    in C (`map` over builtin methods): several times faster than `random.choices` for ten thousand apps.
    """
    words = array("I", rng.randbytes(4 * n * resamples))
    if words.itemsize != 4:  # "I" is 4 bytes on every platform Assay runs on; refuse to be wrong elsewhere
        raise RuntimeError("array type 'I' is not 32 bits here")
    return list(map((32).__rrshift__, map(n.__mul__, words)))


def resample_means(values: Sequence[float], rng: random.Random, resamples: int) -> list[float]:
    """The means of `resamples` draws of len(values) values with replacement."""
    n = len(values)
    picked = list(map(values.__getitem__, resample_indices(n, rng, resamples)))
    return [sum(picked[i * n : (i + 1) * n]) / n for i in range(resamples)]


def resample_ratios(
    numerators: Sequence[float], denominators: Sequence[float], rng: random.Random, resamples: int
) -> list[float]:
    """Σ numerators / Σ denominators of `resamples` draws of len(numerators) pairs with replacement."""
    n = len(numerators)
    indices = resample_indices(n, rng, resamples)
    tops = list(map(numerators.__getitem__, indices))
    bottoms = list(map(denominators.__getitem__, indices))
    return [sum(tops[i * n : (i + 1) * n]) / sum(bottoms[i * n : (i + 1) * n]) for i in range(resamples)]


def percentile_interval(statistics: list[float], level: float) -> tuple[float, float]:
    """(low, high) of the `level` percentile interval of bootstrap statistics."""
    ordered = sorted(statistics)
    last = len(ordered) - 1
    tail = (1.0 - level) / 2
    return ordered[int(tail * last)], ordered[int(round((1.0 - tail) * last))]


def bootstrap_interval(
    values: Sequence[float], seed: str, resamples: int = RESAMPLES, level: float = LEVEL
) -> tuple[float, float]:
    """(low, high) of the `level` percentile interval of the mean of `values`, from `resamples` resamples with
    replacement (its normal closed form above RESAMPLED_UP_TO values); the same values and seed always give the same
    interval. One value: its own interval."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (0.0, 0.0)
    if len(values) > RESAMPLED_UP_TO:
        center = mean(values)
        spread = (
            Z[level]
            * math.sqrt(sum((v - center) ** 2 for v in values) / len(values))
            / math.sqrt(len(values))
        )
        return center - spread, center + spread
    return percentile_interval(resample_means(values, random.Random(seed), resamples), level)


def ratio_interval(
    numerators: Sequence[float],
    denominators: Sequence[float],
    seed: str,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> tuple[float, float]:
    """(low, high) of the `level` percentile interval of a pooled rate Σ numerators / Σ denominators (e.g. findings
    per thousand lines over apps of different sizes), resampling (numerator, denominator) pairs; above
    RESAMPLED_UP_TO pairs the delta method's normal form. Denominators must be positive."""
    n = len(numerators)
    rate = sum(numerators) / sum(denominators) if n else 0.0
    if n < 2:
        return rate, rate
    if n > RESAMPLED_UP_TO:
        mean_denominator = mean(denominators)
        residuals = sum(
            (top - rate * bottom) ** 2 for top, bottom in zip(numerators, denominators, strict=True)
        )
        spread = Z[level] * math.sqrt(residuals / n) / (mean_denominator * math.sqrt(n))
        return rate - spread, rate + spread
    return percentile_interval(
        resample_ratios(numerators, denominators, random.Random(seed), resamples), level
    )
