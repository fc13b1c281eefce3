"""The load tool's options: a request's `options.load` (decoded with the gateway's type,
shared/wire/options.LoadToolOptions) over defaults from the settings (ASSAY_PERF_*), and cut to the hard ceilings of
one task's load (ASSAY_LOAD_MAX_*), which a request can only lower."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from shared.operations.config import Settings
from shared.wire.options import LoadToolOptions
from shared.wire.options import Thresholds as ThresholdOptions

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


def capped(options: LoadOptions, settings: Settings, urls: int) -> LoadOptions:
    """`options` within the ceilings for a run over `urls` URLs (loaded one after another): at most
    ASSAY_LOAD_MAX_REQUESTS requests in all, ASSAY_LOAD_MAX_CONCURRENCY in flight, ASSAY_LOAD_MAX_DURATION_S per URL
    (the tool also stops the whole run at that duration)."""
    return msgspec.structs.replace(
        options,
        requests=max(1, min(options.requests, settings.load_max_requests // max(1, urls))),
        concurrency=min(options.concurrency, settings.load_max_concurrency),
        duration_s=min(options.duration_s, settings.load_max_duration_s),
    )


def ceilings(settings: Settings) -> dict[str, float]:
    """The ceilings in force, as the tool's metrics report them."""
    return {
        "requests": settings.load_max_requests,
        "concurrency": settings.load_max_concurrency,
        "duration_s": settings.load_max_duration_s,
    }
