"""Token routes (admin scope): create (the token is in the answer, once), list, revoke.

`assay token …` calls these against the gateway; `assay token … --direct` writes the database instead (for the
first admin token of a deployment, before anyone can call these).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ServiceUnavailableException
from litestar.params import JSONBody, PathParameter

from services.gateway.api.allow import allowed_methods
from services.gateway.auth import requires
from services.gateway.queries import views
from services.gateway.resources import DATABASE_ERRORS, Resources
from services.gateway.schemas import TokenCreated, TokenList, TokenRequest, TokenView
from shared.store.models import ApiToken
from shared.store.tokens import TOKEN_ID_PATTERN, create_token, list_tokens, revoke_token

log = logging.getLogger(__name__)

TokenIdPath = Annotated[str, PathParameter(pattern=TOKEN_ID_PATTERN, description="12 lowercase hex")]


def token_view(row: ApiToken) -> TokenView:
    return views([row], TokenView)[0]


def _unavailable(error: BaseException) -> ServiceUnavailableException:
    return ServiceUnavailableException(f"database unavailable: {error.__class__.__name__}")


@post(
    "/api/tokens",
    status_code=201,
    summary="Create an API token (shown once)",
    tags=["tokens"],
    **requires("admin", 413, 415, 422, 503),
)
async def create(
    data: JSONBody[TokenRequest], resources: NamedDependency[Resources], request: Request[Any, Any, Any]
) -> Response[TokenCreated]:
    try:
        token, row = await create_token(resources.sessions, data.name, data.scope)
    except DATABASE_ERRORS as error:
        raise _unavailable(error) from error
    creator = request.state.get("token_name", "an open gateway")
    log.info("token %s (%s, scope %s) created by %s", row.token_id, row.name, row.scope, creator)
    return Response(TokenCreated(token=token, about=token_view(row)), status_code=201)


@get(
    "/api/tokens", summary="List API tokens (never their secrets)", tags=["tokens"], **requires("admin", 503)
)
async def list_all(resources: NamedDependency[Resources]) -> TokenList:
    try:
        rows = await list_tokens(resources.sessions)
    except DATABASE_ERRORS as error:
        raise _unavailable(error) from error
    return TokenList(tokens=[token_view(row) for row in rows])


@post(
    "/api/tokens/{token_id:str}/revoke",
    status_code=200,
    summary="Revoke an API token: it is refused from now on",
    tags=["tokens"],
    **requires("admin", 404, 422, 503),
)
async def revoke(resources: NamedDependency[Resources], token_id: TokenIdPath) -> TokenView:
    try:
        row = await revoke_token(resources.sessions, token_id)
    except DATABASE_ERRORS as error:
        raise _unavailable(error) from error
    if row is None:
        raise NotFoundException(f"token {token_id} not found")
    resources.verified.forget(token_id)  # refused from the next request on, not only once its entry expires
    log.info("token %s (%s) revoked", row.token_id, row.name)
    return token_view(row)


router = Router("/", route_handlers=[allowed_methods("/api/tokens"), create, list_all, revoke])
