"""The gateway's Litestar application: routes, authorization, error handling, tracing middleware, OpenAPI.

`create_app(settings)` builds a fresh application; its connections live in `app.state` (see resources.py),
so tests and the real entry point build it the same way.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from services.gateway.answer_formats import document_formats, formats_honoured
from services.gateway.api import apps, contracts, dead_letters, health, metrics, tokens
from services.gateway.api.batches import routes as batches
from services.gateway.api.reports import routes as reports
from services.gateway.api.tasks import routes as tasks
from services.gateway.auth import authorize, check_exposure
from services.gateway.errors import EXCEPTION_HANDLERS
from services.gateway.headers import security_headers
from services.gateway.middleware import server_spans
from services.gateway.openapi import exact_request_schemas, openapi_config
from services.gateway.pages import routes as pages
from services.gateway.pages.api_docs import DocsPage, open_docs_page
from services.gateway.resources import open_resources, provide_resources
from shared.operations.config import Settings
from shared.operations.redact import masked_url

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Open the resources for `app.state.settings`, refuse an exposed gateway, keep them in `app.state`."""
    async with open_resources(app.state.settings) as resources:
        await check_exposure(resources)
        app.state.resources = resources
        log.info("gateway connected to NATS at %s", masked_url(resources.settings.nats_url or ""))
        yield


def create_app(settings: Settings) -> Litestar:
    """A gateway application for `settings`; it connects to NATS and the database when it starts."""
    app = Litestar(
        route_handlers=[
            tasks.router,
            batches.router,
            apps.router,
            reports.router,
            tokens.router,
            dead_letters.router,
            contracts.router,
            health.router,
            metrics.router,
            pages.router,
        ],
        guards=[authorize, formats_honoured],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[server_spans],
        before_send=[security_headers],  # every answer, a 404 of no route included
        dependencies={"resources": Provide(provide_resources, sync_to_thread=False)},
        lifespan=[lifespan],
        state=State({"settings": settings}),
        openapi_config=openapi_config(DocsPage()),
        request_max_body_size=settings.max_body_bytes,
        logging_config=None,  # the process's logging (JSON lines, shared/operations/logs) stays as the entry point set it
    )
    exact_request_schemas(app)
    document_formats(app)
    open_docs_page(app)
    return app
