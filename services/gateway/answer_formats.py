"""Answer formats: the routes that answer in more than one format take `?format=`, honour it, and document every
media type they answer with; every other API route refuses a `format` (a 422 naming it) instead of answering JSON
as if it had been heard.
"""

from __future__ import annotations

from typing import Any, Literal

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Schema

from services.gateway.errors import invalid

ReportFormat = Literal["json", "csv", "markdown"]
ExportFormat = Literal["jsonl", "csv"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv",
    "markdown": "text/markdown",
    "jsonl": "application/x-ndjson",
}
FORMAT = "format"


def media_type(answer_format: str) -> str:
    """The Content-Type of an answer in that format (text in UTF-8)."""
    kind = MEDIA_TYPES[answer_format]
    return kind if kind == "application/json" else f"{kind}; charset=utf-8"


def takes_format(handler: BaseRouteHandler) -> bool:
    """Whether the route declares a `format` query parameter (under any Python name)."""
    for field in handler.parsed_fn_signature.parameters.values():
        definition = getattr(field, "kwarg_definition", None)
        if field.name == FORMAT or FORMAT in (
            getattr(definition, "query", None),
            getattr(definition, "name", None),
        ):
            return True
    return False


async def formats_honoured(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard: a `format` sent to an API route that has none is refused, naming it, rather than ignored."""
    if (
        FORMAT in connection.query_params
        and connection.url.path.startswith("/api/")
        and not takes_format(handler)
    ):
        raise invalid(FORMAT, "this route answers JSON only and takes no format", source="query")


def document_formats(app: Litestar) -> None:
    """In the OpenAPI document, each route with a `format` parameter answers 200 in every format it allows."""
    document = app.openapi_schema
    for item in (document.paths or {}).values():
        operation = item.get
        if operation is None:
            continue
        chosen = next((p for p in operation.parameters or [] if getattr(p, "name", None) == FORMAT), None)
        schema = getattr(chosen, "schema", None)
        formats = list(getattr(schema, "enum", None) or [])
        answer = (operation.responses or {}).get("200")
        if not formats or not isinstance(answer, OpenAPIResponse):
            continue
        content = dict(answer.content or {})
        json_schema = content.get("application/json")
        answer.content = {
            MEDIA_TYPES[str(name)]: json_schema
            if name == "json" and json_schema is not None
            else OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, description=f"the answer as {name}"))
            for name in formats
        }
