"""The load tool's options: a request's `options.load`, over defaults from the settings (ASSAY_PERF_*)."""

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
