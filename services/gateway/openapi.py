"""The OpenAPI document: Litestar's, with the request bodies described by msgspec's own JSON schema.

Litestar's generator drops constraints the decoder enforces (patterns of list items, bounds of dict values, a
minimum of 0 on an optional number), so a schema-valid body could still be refused. msgspec derives its schema
from the same types it decodes with, so the document says exactly what is accepted; the one rule no type holds
(which tools an analysis type offers, from the catalog the gateway checks against) is added beside it.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from services.gateway.api.batches.plan import BatchRequest
from services.gateway.auth import BEARER_SCHEME
from services.gateway.schemas import RunRequest, TokenRequest
from shared.wire.catalog import SERVICES_BY_TYPE, offered_tools

REQUEST_BODIES: tuple[type[msgspec.Struct], ...] = (RunRequest, TokenRequest, BatchRequest)


def openapi_config(*render_plugins: OpenAPIRenderPlugin) -> OpenAPIConfig:
    """The OpenAPI document's configuration, its page drawn by `render_plugins` (services/gateway/pages/api_docs.py)."""
    return OpenAPIConfig(
        title="Assay",
        version="1",
        description="Runs analysis tools on generated web apps and reports what they found. Every route but "
        "`/healthz` and `/readyz` needs `Authorization: Bearer <token>` (`assay token create`).",
        path="/schema",
        render_plugins=list(render_plugins),
        components=Components(
            security_schemes={
                BEARER_SCHEME: SecurityScheme(
                    type="http", scheme="bearer", description="An API token: `assay_<id>_<secret>`"
                )
            }
        ),
    )


def exact_request_schemas(app: Litestar) -> None:
    """Replace the components of the request bodies (and the types they hold) with msgspec's schema."""
    _refs, components = msgspec.json.schema_components(
        REQUEST_BODIES, ref_template="#/components/schemas/{name}"
    )
    components[RunRequest.__name__]["anyOf"] = [
        {
            "properties": {
                "analysis_type": {"const": kind},
                "tools": {"type": "array", "items": {"enum": offered_tools(kind)}},
            }
        }
        for kind in SERVICES_BY_TYPE
    ]
    # A batch's tools must be offered by each of its analysis types: no tools, or one type with its own tools.
    components[BatchRequest.__name__]["anyOf"] = [
        {"properties": {"tools": {"type": "array", "maxItems": 0}}},
        *(
            {
                "properties": {
                    "analysis_types": {"type": "array", "items": {"const": kind}},
                    "tools": {"type": "array", "items": {"enum": offered_tools(kind)}},
                }
            }
            for kind in SERVICES_BY_TYPE
        ),
    ]
    document = app.openapi_schema
    schemas: dict[str, Any] = dict(document.components.schemas or {})
    schemas.update(components)  # plain dicts: the document serializes them as they are
    document.components.schemas = schemas
