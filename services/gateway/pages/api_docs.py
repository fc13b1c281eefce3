"""The API docs page (`/schema`): Swagger UI served by the gateway itself, so it works offline.

The page is public and holds nothing: like the other pages (services/gateway/pages/shell.py) it asks for a token, reads
the OpenAPI document (`/schema/openapi.json`, which needs one) with it, and Swagger UI sends it on every call it
makes. Swagger UI 5 (it reads OpenAPI 3.1, which Litestar writes) comes from the `openapi-ui-bundles` package,
installed with Assay, under `/schema/assets/`; the page's own files are under `/schema/page/`. Nothing comes from a
CDN, no script is inline: the pages' Content-Security-Policy holds here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.router import Router
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from openapi_ui_bundles import swagger_ui

from services.gateway.auth import PUBLIC
from services.gateway.pages.shell import AssetName, PageFiles

ASSETS = "/schema/assets"
PAGE_PATHS = ("/", "/swagger")  # under /schema
FILES = PageFiles("services.gateway.pages.docs_page", "index.html", "docs.js")


class DocsPage(OpenAPIRenderPlugin):
    """Litestar's route for the docs page answers with the page shell; the document is not put into it."""

    def __init__(self) -> None:
        super().__init__(path=list(PAGE_PATHS))

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        del request, openapi_schema  # the page reads the document itself, with the user's token
        return FILES.files["index.html"]


def open_docs_page(app: Litestar) -> None:
    """Litestar builds the page's route itself, with the guard's default (a token): mark it public, as every page
    is (its document stays behind a token)."""
    pages = {f"/schema{path}".rstrip("/") for path in PAGE_PATHS}
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path in pages:
            for handler in route.route_handlers:
                handler.opt.update(PUBLIC)


@get("/schema/page/{name:str}", include_in_schema=False, opt=PUBLIC, name="api-docs-page")
async def docs_page_file(name: AssetName) -> Response[bytes]:
    """The page's own script (public, like the page)."""
    return FILES.response(name)


def assets_folder() -> Path:
    """The folder of the Swagger UI files inside the installed `openapi-ui-bundles` package."""
    folder = Path(swagger_ui.static_path)
    if not (folder / "swagger-ui-bundle.js").is_file():
        raise RuntimeError(f"no Swagger UI files under {folder}: reinstall with `make install`")
    return folder


def docs_assets(opt: dict[str, Any]) -> Router:
    """The Swagger UI files, read from the installed package; `opt` is the route's guard option (public: nothing
    of Assay's is in them, and a browser sends no token for a script or a style sheet)."""
    return create_static_files_router(
        path=ASSETS,
        directories=[assets_folder()],
        include_in_schema=False,
        name="api-docs-assets",
        opt=opt,
    )
