"""The load tool's options as it runs them: a request's `options.load` (decoded with the gateway's type,
shared/options.LoadToolOptions) over defaults from the settings (ASSAY_PERF_*)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from shared.config import Settings
from shared.options import LoadToolOptions
from shared.options import Thresholds as ThresholdOptions

Number = TypeVar("Number", int, float)


class Thresholds(msgspec.Struct, frozen=True, kw_only=True):
    error_rate: float  # share of failed requests allowed per URL
    p99_ms: float  # p99 latency allowed per URL


class LoadOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What one load run does; the request's values were bounded by LoadToolOptions, the rest are settings."""

    requests: int  # per URL
    concurrency: int
    duration_s: float  # per URL, cap on issuing requests
    timeout_s: float  # per request
    paths: list[str] | None = None  # None: the backend's GET endpoints from requirements.json, else "/"
    thresholds: Thresholds


def load_options(raw: Mapping[str, Any], settings: Settings) -> LoadOptions:
    """The request's `options.load` over the defaults; raises msgspec.ValidationError naming the bad field."""
    given = msgspec.convert(raw, LoadToolOptions)
    thresholds = given.thresholds or ThresholdOptions()
    return LoadOptions(
        requests=_given(given.requests, settings.perf_requests),
        concurrency=_given(given.concurrency, settings.perf_concurrency),
        duration_s=_given(given.duration_s, settings.perf_duration_s),
        timeout_s=_given(given.timeout_s, settings.perf_timeout_s),
        paths=given.paths,
        thresholds=Thresholds(
            error_rate=_given(thresholds.error_rate, settings.perf_error_rate),
            p99_ms=_given(thresholds.p99_ms, settings.perf_p99_ms),
        ),
    )


def _given(value: Number | None, default: Number) -> Number:
    return default if value is None else value
