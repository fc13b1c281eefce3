"""Who may call the gateway: a bearer token of a sufficient scope on every route but the health checks.

Each route says the scope it needs with `requires(scope, …)` (which also documents the bearer scheme and the
401/403 answers); routes without one need `read` (the OpenAPI document included), routes marked `PUBLIC` need
nothing. The same guard refuses a body that is not JSON (415). At start, `check_exposure` refuses to serve
open (ASSAY_AUTH=off) on anything but loopback, and to serve on a non-loopback address with no token at all.
"""

from __future__ import annotations

import logging
import sys
from typing import Any
from urllib.parse import urlparse

from litestar.connection import ASGIConnection
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    PermissionDeniedException,
    ServiceUnavailableException,
)
from litestar.handlers.base import BaseRouteHandler

from services.gateway.errors import documented
from services.gateway.resources import DATABASE_ERRORS, Resources
from shared.operations.errors import AssayError
from shared.operations.loopback import is_loopback
from shared.store.tokens import Scope, active_tokens, allows, authenticate

BEARER_SCHEME = "bearer"  # the OpenAPI security scheme every protected route names

log = logging.getLogger(__name__)

PUBLIC = {"public": True}
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="assay"'}


class ExposureRefused(AssayError):
    """The gateway would be reachable by anyone: it does not start."""


def requires(scope: Scope, *codes: int) -> dict[str, Any]:
    """Route decorator arguments for a route that needs `scope`: the guard's option, the OpenAPI security
    requirement, and the documented refusals (401, 403 and `codes`)."""
    return {
        "opt": {"scope": scope},
        "security": [{BEARER_SCHEME: []}],
        "responses": documented(401, 403, *codes),
    }


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _has_body(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    length = connection.headers.get("content-length")
    return bool(length and length.strip() != "0") or "transfer-encoding" in connection.headers


def json_only(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """415 for a body that is not `application/json` (a browser can send text/plain cross-site, unasked)."""
    if not _has_body(connection):
        return
    media_type = connection.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ClientException(
            status_code=415, detail=f"request bodies must be application/json, not {media_type or 'untyped'}"
        )


async def authorize(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard of every route: 401 without a valid token, 403 when its scope is too small, then `json_only`. A
    token verified a moment ago is not checked again (services/gateway/verified_tokens.py)."""
    resources: Resources = connection.app.state.resources
    if handler.opt.get("public") or not resources.settings.auth:
        json_only(connection)
        return
    presented = _bearer(connection)
    if presented is None:
        raise NotAuthorizedException("missing `Authorization: Bearer <token>`", headers=_CHALLENGE)
    token = resources.verified.get(presented)
    if token is None:
        try:
            token = await authenticate(resources.sessions, presented)
        except DATABASE_ERRORS as error:
            raise ServiceUnavailableException(
                f"cannot check the token: database unavailable ({error.__class__.__name__})"
            ) from error
        if token is None:
            raise NotAuthorizedException("invalid or revoked token", headers=_CHALLENGE)
        resources.verified.put(presented, token)
    needed: Scope = handler.opt.get("scope", "read")
    if not allows(token.scope, needed):
        raise PermissionDeniedException(f"token {token.name!r} has scope {token.scope}; this needs {needed}")
    connection.state.token_name = token.name
    connection.state.token_id = token.token_id  # whose Idempotency-Keys a request uses
    json_only(connection)


async def check_exposure(resources: Resources) -> None:
    """Refuse to serve open beyond loopback; say loudly when serving open; refuse a public address without
    any token (nobody could get in but anybody could try)."""
    host = urlparse(resources.settings.gateway_url).hostname or "127.0.0.1"
    local = is_loopback(host)
    if not resources.settings.auth:
        if not local:
            raise ExposureRefused(
                f"ASSAY_AUTH=off is refused on {host}: bind the gateway to loopback or use tokens"
            )
        banner = f"ASSAY_AUTH=off: the gateway on {host} answers ANYONE on this machine without a token"
        print(f"\n*** {banner} ***\n", file=sys.stderr, flush=True)
        log.warning(banner)
        return
    if local:
        return
    try:
        count = await active_tokens(resources.sessions)
    except DATABASE_ERRORS as error:
        raise ExposureRefused(
            f"cannot count API tokens ({error.__class__.__name__}); not serving on {host}"
        ) from error
    if count == 0:
        raise ExposureRefused(
            f"no API token exists: not serving on {host}. Create one first: "
            "`assay token create NAME --scope admin --direct` (with this ASSAY_DATABASE_URL)"
        )
