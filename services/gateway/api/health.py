"""`/healthz` (the process is up) and `/readyz` (NATS connected and the database answering)."""

from __future__ import annotations

import asyncio

from litestar import Response, Router, get
from litestar.di import NamedDependency

from services.gateway.auth import PUBLIC
from services.gateway.errors import documented
from services.gateway.queries import database_answers
from services.gateway.resources import DATABASE_ERRORS, Resources
from services.gateway.schemas import Readiness

DATABASE_TIMEOUT_S = 3.0


@get("/healthz", summary="Liveness: the process answers", tags=["health"], opt=PUBLIC)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _database_state(resources: NamedDependency[Resources]) -> str:
    try:
        await asyncio.wait_for(database_answers(resources.engine), DATABASE_TIMEOUT_S)
    except TimeoutError:
        return f"down: no answer to SELECT 1 within {DATABASE_TIMEOUT_S:g} s"
    except DATABASE_ERRORS as error:
        return f"down: {error.__class__.__name__}: {error}".splitlines()[0]
    return "ok"


def _nats_state(resources: NamedDependency[Resources]) -> str:
    if resources.nats.is_connected:
        return "ok"
    if resources.nats.is_reconnecting:
        return "down: reconnecting"
    return "down: not connected"


@get(
    "/readyz",
    summary="Readiness: 200 only when NATS is connected and the database answers; 503 says which is down",
    tags=["health"],
    responses=documented(503),
    opt=PUBLIC,
)
async def readyz(resources: NamedDependency[Resources]) -> Response[Readiness]:
    nats_state = _nats_state(resources)
    database_state = await _database_state(resources)
    ready = nats_state == "ok" and database_state == "ok"
    body = Readiness(status="ready" if ready else "unavailable", nats=nats_state, database=database_state)
    return Response(body, status_code=200 if ready else 503)


router = Router("/", route_handlers=[healthz, readyz])
