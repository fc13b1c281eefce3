"""The routes of batches: queuing one, listing them, one batch's state, findings, events and cancellation."""

from __future__ import annotations

from litestar import Router

from services.gateway.api.allow import allowed_methods
from services.gateway.api.batches.batch import batch_event_stream, cancel_batch, create_batch, get_batch
from services.gateway.api.batches.export import export_batch_findings
from services.gateway.api.batches.listing import get_batches

router = Router(
    "/",
    route_handlers=[
        allowed_methods("/api/batches"),  # before the path's handlers: GET and POST share it
        create_batch,
        get_batches,
        get_batch,
        export_batch_findings,
        batch_event_stream,
        cancel_batch,
    ],
)
