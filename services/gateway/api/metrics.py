"""`GET /metrics`: the gateway's instruments in the Prometheus text format (shared/telemetry/metrics.py).

Counts and durations by route are not secrets, but they say what the gateway is used for and how much: the route
stays behind the same guard as the API (a `read` token), as Prometheus's `authorization` scrape setting allows.
"""

from __future__ import annotations

import asyncio

from litestar import Response, Router, get

from services.gateway.auth import requires
from shared.telemetry.metrics import PROMETHEUS_CONTENT_TYPE, prometheus_text


@get(
    "/metrics",
    summary="Metrics in the Prometheus text format",
    tags=["operations"],
    media_type=PROMETHEUS_CONTENT_TYPE,
    **requires("read"),
)
async def metrics_text() -> Response[bytes]:
    body = await asyncio.to_thread(prometheus_text)
    return Response(body, media_type=PROMETHEUS_CONTENT_TYPE)


router = Router("/", route_handlers=[metrics_text])
