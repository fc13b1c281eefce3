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

from services.gateway.allow import allowed_methods
from services.gateway.analysis import run_analysis
from services.gateway.answer_formats import document_formats, formats_honoured
from services.gateway.api_docs import DocsPage, docs_assets, docs_page_file, open_docs_page
from services.gateway.apps import list_apps, list_models
from services.gateway.auth import PUBLIC, authorize, check_exposure
from services.gateway.batch_export import export_batch_findings
from services.gateway.batch_list import get_batches
from services.gateway.batches import batch_event_stream, cancel_batch, create_batch, get_batch
from services.gateway.contracts import asyncapi_document, json_schema
from services.gateway.dashboard.files import get_result_file
from services.gateway.dashboard.routes import dashboard_asset, dashboard_page
from services.gateway.dashboard.source import get_source
from services.gateway.dead_letters import DEAD_LETTER_ROUTES
from services.gateway.diffs import get_diff
from services.gateway.errors import EXCEPTION_HANDLERS
from services.gateway.events import task_event_stream
from services.gateway.headers import security_headers
from services.gateway.health import healthz, readyz
from services.gateway.issues import get_issues
from services.gateway.metrics import metrics_text
from services.gateway.middleware import server_spans
from services.gateway.openapi import exact_request_schemas, openapi_config
from services.gateway.pages import shared_asset
from services.gateway.reports.routes import (
    models_comparison,
    models_comparison_change,
    models_comparison_csv,
    models_comparison_markdown,
)
from services.gateway.resources import open_resources, provide_resources
from services.gateway.tasks import cancel_task, get_findings, get_task, list_all_tasks
from services.gateway.tokens import TOKEN_ROUTES
from services.gateway.traces.page import trace_asset, trace_page
from services.gateway.traces.routes import get_task_trace
from shared.config import Settings
from shared.redact import masked_url

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
            run_analysis,
            list_all_tasks,
            get_task,
            get_findings,
            get_issues,
            get_diff,
            cancel_task,
            get_task_trace,
            get_source,
            get_result_file,
            trace_page,
            trace_asset,
            dashboard_page,
            dashboard_asset,
            shared_asset,
            task_event_stream,
            list_apps,
            list_models,
            allowed_methods("/api/batches"),  # before the path's handlers: GET and POST share it
            create_batch,
            get_batches,
            get_batch,
            export_batch_findings,
            batch_event_stream,
            cancel_batch,
            models_comparison,
            models_comparison_csv,
            models_comparison_markdown,
            models_comparison_change,
            docs_assets(PUBLIC),
            docs_page_file,
            *TOKEN_ROUTES,
            *DEAD_LETTER_ROUTES,
            healthz,
            readyz,
            metrics_text,
            asyncapi_document,
            json_schema,
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
        logging_config=None,  # the process's logging (JSON lines, shared/logs) stays as the entry point set it
    )
    exact_request_schemas(app)
    document_formats(app)
    open_docs_page(app)
    return app
