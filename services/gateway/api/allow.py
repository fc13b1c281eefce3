"""`OPTIONS` for a path served by several handlers: the `Allow` header lists every method of the path.

Litestar 2 makes its own OPTIONS handler when the first handler of a path is registered and never updates it,
so it would list that handler's methods only. Registered before the path's other handlers, this one takes its
place and reads the methods when asked.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, route
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler


def allowed_methods(path: str) -> HTTPRouteHandler:
    """An OPTIONS handler for `path` (open: a preflight carries no token); list it before the path's others."""

    async def options(request: Request[Any, Any, Any]) -> Response[None]:
        methods = sorted(request.app.route_handler_method_map.get(path, {}))
        return Response(None, status_code=204, headers={"Allow": ", ".join(methods)})

    return route(
        path,
        http_method=[HttpMethod.OPTIONS],
        include_in_schema=False,
        status_code=204,
        opt={"public": True},
        name=f"options {path}",
    )(options)
