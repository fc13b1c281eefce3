"""The load tool's options: a request's `options.load`, over defaults from the settings (ASSAY_PERF_*), and cut to
the hard ceilings of one task's load (ASSAY_LOAD_MAX_*), which a request can only lower."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from shared.config import Settings

MAX_PATHS = 20


class Thresholds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    error_rate: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]  # share of failed requests allowed per URL
    p99_ms: Annotated[float, msgspec.Meta(gt=0.0)]  # p99 latency allowed per URL


class LoadOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    requests: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]  # per URL
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=512)]
    duration_s: Annotated[float, msgspec.Meta(gt=0.0, le=3600.0)]  # per URL, cap on issuing requests
    timeout_s: Annotated[float, msgspec.Meta(gt=0.0, le=300.0)]  # per request
    # Paths loaded on every target; None: the backend's GET endpoints from requirements.json, else "/".
    paths: (
        Annotated[list[Annotated[str, msgspec.Meta(pattern=r"^/")]], msgspec.Meta(max_length=MAX_PATHS)]
        | None
    ) = None
    thresholds: Thresholds


def load_options(raw: Mapping[str, Any], settings: Settings) -> LoadOptions:
    """Merge `raw` over the defaults and validate; raises msgspec.ValidationError naming the bad field."""
    thresholds: Any = {"error_rate": settings.perf_error_rate, "p99_ms": settings.perf_p99_ms}
    given = raw.get("thresholds")
    if isinstance(given, Mapping):
        thresholds = {**thresholds, **given}
    elif given is not None:
        thresholds = given  # not a mapping: let validation say so
    merged = {
        "requests": settings.perf_requests,
        "concurrency": settings.perf_concurrency,
        "duration_s": settings.perf_duration_s,
        "timeout_s": settings.perf_timeout_s,
        **{key: value for key, value in raw.items() if key != "thresholds"},
        "thresholds": thresholds,
    }
    return msgspec.convert(merged, LoadOptions)


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
