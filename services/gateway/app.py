"""The gateway's Litestar application: routes, error handling, tracing middleware, OpenAPI.

`create_app(settings)` builds a fresh application; its connections live in `app.state` (see resources.py),
so tests and the real entry point build it the same way.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from services.gateway.analysis import run_analysis
from services.gateway.contracts import asyncapi_document, json_schema
from services.gateway.errors import EXCEPTION_HANDLERS
from services.gateway.events import task_event_stream
from services.gateway.health import healthz, readyz
from services.gateway.metrics import metrics_text
from services.gateway.middleware import server_spans
from services.gateway.resources import lifespan, provide_resources
from services.gateway.tasks import cancel_task, get_findings, get_task, list_all_tasks
from services.gateway.traces import get_task_trace
from shared.config import Settings

OPENAPI = OpenAPIConfig(
    title="Assay",
    version="1",
    description="Runs analysis tools on generated web apps and reports what they found.",
    path="/schema",
)


def create_app(settings: Settings) -> Litestar:
    """A gateway application for `settings`; it connects to NATS and the database when it starts."""
    return Litestar(
        route_handlers=[
            run_analysis,
            list_all_tasks,
            get_task,
            get_findings,
            cancel_task,
            get_task_trace,
            task_event_stream,
            healthz,
            readyz,
            metrics_text,
            asyncapi_document,
            json_schema,
        ],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[server_spans],
        dependencies={"resources": Provide(provide_resources, sync_to_thread=False)},
        lifespan=[lifespan],
        state=State({"settings": settings}),
        openapi_config=OPENAPI,
        logging_config=None,  # the process's logging (JSON lines, shared/logs) stays as the entry point set it
    )
