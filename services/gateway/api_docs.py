"""The API docs page (`/schema`): Swagger UI served by the gateway itself, so it works offline.

The UI's script, style and icon come from the `swagger-ui-bundle` package, installed with Assay, and are served
under `/schema/assets/`; nothing is loaded from a CDN.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router

ASSETS = "/schema/assets"


def docs_page() -> SwaggerRenderPlugin:
    """Swagger UI at `/schema` (and `/schema/swagger`), every file from `ASSETS`."""
    return SwaggerRenderPlugin(
        js_url=f"{ASSETS}/swagger-ui-bundle.js",
        css_url=f"{ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>",
        path=["/", "/swagger"],
    )


def assets_folder() -> Path:
    """The folder of the Swagger UI files inside the installed `swagger-ui-bundle` package."""
    vendor = Path(str(files("swagger_ui_bundle").joinpath("vendor")))
    found = sorted(vendor.glob("swagger-ui-*"))
    if not found:
        raise RuntimeError(f"no Swagger UI files under {vendor}: reinstall with `make install`")
    return found[-1]


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
