"""A SERVER span around every HTTP request, continuing the caller's `traceparent` header.

Named `<METHOD> <route template>` (e.g. `GET /api/tasks/{task_id}`), so spans of one route group together.
It runs inside Litestar's routing, after the route is known, and outside the exception handlers, so the status
it records is the one the client receives.
"""

from __future__ import annotations

import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared.telemetry.metrics import record_http_request
from shared.telemetry.tracing import TASK_ID_ATTRIBUTE, extract_context


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def server_spans(app: ASGIApp) -> ASGIApp:
    """Litestar middleware factory (Litestar passes the next app as `app`)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        route = str(scope.get("path_template") or scope.get("path", ""))
        traceparent = _header(scope, b"traceparent")
        parent = extract_context({"traceparent": traceparent} if traceparent else None)
        attributes: dict[str, str] = {
            "http.request.method": method,
            "http.route": route,
            "url.path": str(scope.get("path", "")),
        }
        task_id = (scope.get("path_params") or {}).get("task_id")
        if isinstance(task_id, str):
            attributes[TASK_ID_ATTRIBUTE] = task_id
        tracer = trace.get_tracer(__name__)
        span = tracer.start_span(
            f"{method} {route}", context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        started = time.monotonic()
        status = 500  # what the client gets when the app raises before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
            await send(message)

        try:
            await app(scope, receive, send_with_status)
        except Exception as error:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            raise
        finally:
            otel_context.detach(token)
            span.end()
            record_http_request(
                method, str(scope.get("path_template") or ""), status, time.monotonic() - started
            )

    return middleware
