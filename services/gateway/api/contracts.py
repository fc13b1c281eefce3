"""`/api/contracts/…`: the AsyncAPI document and the JSON Schemas of every message and frame, for subscribers.

They are generated from the same msgspec types the services use (shared/wire/contracts.py), once per process, so
what the gateway serves is what it speaks; `docs/contracts/` holds the same files, checked against the types
by a test.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Annotated, Any

import msgspec
from litestar import Router, get
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter

from services.gateway.auth import requires
from shared.wire.contracts import ASYNCAPI_FILE, SCHEMAS_DIR, contract_files


@cache
def _documents() -> dict[str, dict[str, Any]]:
    # Decoded, so the OpenAPI document describes each answer as the JSON object it is.
    return {name: msgspec.json.decode(data) for name, data in contract_files().items()}


async def _file(name: str) -> dict[str, Any]:
    documents = await asyncio.to_thread(
        _documents
    )  # generated on first use: CPU work kept off the event loop
    if name not in documents:
        raise NotFoundException(f"no contract named {name!r}; the AsyncAPI document lists every message")
    return documents[name]


@get(
    f"/api/contracts/{ASYNCAPI_FILE}",
    summary="AsyncAPI 3.0 document of Assay's subjects, streams and analyzer protocol",
    tags=["contracts"],
    **requires("read"),
)
async def asyncapi_document() -> dict[str, Any]:
    return await _file(ASYNCAPI_FILE)


@get(
    "/api/contracts/schemas/{name:str}",
    summary="JSON Schema of one message, frame or tagged union (e.g. Event.json)",
    tags=["contracts"],
    **requires("read", 404),
)
async def json_schema(
    name: Annotated[str, PathParameter(description="`<Message>.json`, as the AsyncAPI document names them")],
) -> dict[str, Any]:
    return await _file(f"{SCHEMAS_DIR}/{name}")


router = Router("/", route_handlers=[asyncapi_document, json_schema])
