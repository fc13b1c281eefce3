"""How refused requests are answered: every input error is a 422 that names the field and the reason.

Litestar answers a failed validation with 400 and malformed JSON with a bare 400; the API contract says 422 for
both, with `{"status_code": 422, "detail": …, "errors": [{"field": …, "reason": …, "source": …}]}`.
"""

from __future__ import annotations

import logging
import re
from typing import Any, get_args

from litestar import Request, Response
from litestar.exceptions import ClientException, HTTPException, SerializationException, ValidationException
from litestar.openapi import ResponseSpec
from sqlalchemy.exc import SQLAlchemyError

from services.gateway.schemas import ErrorBody, FieldError
from shared.results.findings import Severity
from shared.wire.messages import Priority, TaskStatus
from shared.wire.tasks import AnalysisType

log = logging.getLogger(__name__)


def invalid(field: str, reason: str, source: str = "body") -> ValidationException:
    """A 422 for one field, raised by the route handlers for checks msgspec cannot express."""
    return ValidationException(
        detail=f"{field}: {reason}", extra=[{"key": field, "message": reason, "source": source}]
    )


# The values each enumerated field allows, so that refusing one says what would have been accepted.
ALLOWED_VALUES: dict[str, tuple[str, ...]] = {
    "analysis_type": get_args(AnalysisType),
    "analysis_types": get_args(AnalysisType),
    "priority": get_args(Priority),
    "status": get_args(TaskStatus),
    "severity": get_args(Severity),
}


def with_allowed_values(field: str | None, reason: str) -> str:
    """`reason`, plus the allowed values when it refuses a value of an enumerated field."""
    name = re.sub(r"\[\d+\]$", "", field or "")  # `analysis_types[0]` is an entry of `analysis_types`
    if name in ALLOWED_VALUES and "enum" in reason.lower() and "allowed:" not in reason:
        return f"{reason}; allowed: {', '.join(ALLOWED_VALUES[name])}"
    return reason


def _errors(extra: Any) -> list[FieldError]:
    items = extra if isinstance(extra, list) else [extra] if extra else []
    errors = []
    for item in items:
        if isinstance(item, dict):
            field, source = item.get("key"), item.get("source")
            if source == "header" and field:
                # Litestar names a header by its parameter (`idempotency_key`); the client knows the header.
                field = "-".join(part.capitalize() for part in str(field).replace("_", "-").split("-"))
            reason = with_allowed_values(field, str(item.get("message")))
            errors.append(FieldError(field=field, reason=reason, source=source))
        else:
            errors.append(FieldError(field=None, reason=str(item), source=None))
    return errors


def unprocessable(detail: str, errors: list[FieldError]) -> Response[ErrorBody]:
    return Response(ErrorBody(status_code=422, detail=detail, errors=errors), status_code=422)


def documented(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the refusals a route can answer with (Litestar documents only its own 400)."""
    return {code: ResponseSpec(ErrorBody, description=_MEANINGS[code]) for code in codes}


_MEANINGS = {
    401: "No valid token: send `Authorization: Bearer <token>` with a token that is not revoked",
    403: "The token's scope does not allow this (read < submit < admin)",
    404: "Not found: the task, the app folder or the named contract does not exist",
    409: "Conflict: the task has already ended",
    413: "The request is too large (the body limit, or what NATS can carry)",
    415: "The body is not `application/json`",
    422: "Invalid input: `errors` names each field and why",
    503: "NATS or the database cannot answer right now; nothing was changed",
}


def client_error(request: Request[Any, Any, Any], error: ClientException) -> Response[Any]:
    """Validation failures and malformed JSON become 422 with the field named; other client errors keep their code."""
    if isinstance(error, ValidationException):
        errors = _errors(error.extra)
        # Litestar's own detail is "Validation failed for POST /…"; say which field and why instead.
        named = "; ".join(f"{e.field}: {e.reason}" for e in errors if e.field) or error.detail
        return unprocessable(named, errors)
    if isinstance(error.__cause__, SerializationException):
        reason = f"request body is not valid JSON ({error.detail})"
        return unprocessable(reason, [FieldError(field=None, reason=reason, source="body")])
    body: dict[str, Any] = {"status_code": error.status_code, "detail": error.detail}
    if error.extra:
        body["extra"] = error.extra
    return Response(body, status_code=error.status_code, headers=error.headers)


def database_error(request: Request[Any, Any, Any], error: SQLAlchemyError) -> Response[ErrorBody]:
    """A read the database could not answer (locked, not migrated, down): 503, nothing changed, try again."""
    detail = f"database unavailable: {error.__class__.__name__}; try again shortly"
    log.warning("%s %s answered 503: %s", request.method, request.url.path, error.__class__.__name__)
    return Response(ErrorBody(status_code=503, detail=detail), status_code=503)


def too_deep(_request: Request[Any, Any, Any], _error: RecursionError) -> Response[ErrorBody]:
    """JSON nested beyond what the decoder follows is bad input, not a server fault."""
    reason = "request body is nested too deeply"
    return unprocessable(reason, [FieldError(field=None, reason=reason, source="body")])


def server_error(request: Request[Any, Any, Any], error: Exception) -> Response[ErrorBody]:
    """Every 5xx is logged with its traceback and task id; the client gets the reason, never a stack trace."""
    status = error.status_code if isinstance(error, HTTPException) else 500
    detail = error.detail if isinstance(error, HTTPException) else "internal error; see the gateway log"
    if status < 500:
        return Response(ErrorBody(status_code=status, detail=detail), status_code=status)
    task_id = request.scope.get("path_params", {}).get("task_id")
    log.error(
        "%s %s answered %d: %s",
        request.method,
        request.url.path,
        status,
        detail,
        exc_info=error,
        extra={"task_id": task_id, "status_code": status},
    )
    return Response(ErrorBody(status_code=status, detail=detail), status_code=status)


EXCEPTION_HANDLERS = {
    ClientException: client_error,
    RecursionError: too_deep,
    SQLAlchemyError: database_error,
    Exception: server_error,
}
