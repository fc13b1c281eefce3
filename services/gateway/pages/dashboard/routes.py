"""The dashboard's page: `/`, `/dashboard` and its views (`/dashboard/tasks/{id}`, `/dashboard/batches[/{id}]`,
`/dashboard/models`, `/dashboard/apps/{model}/{number}`) all answer the same public shell; its script (`/dashboard/assets/`) reads the address, asks
for a token (services/gateway/pages/shell.py) and draws the view from the JSON API."""

from __future__ import annotations

from litestar import Response, get

from services.gateway.auth import PUBLIC
from services.gateway.pages.shell import AssetName, PageFiles

FILES = PageFiles(
    "services.gateway.pages.dashboard.page_files",
    "index.html",
    "dashboard.js",
    "study.js",
    "charts.js",
    "dashboard.css",
)


@get(["/", "/dashboard", "/dashboard/{view:path}"], include_in_schema=False, opt=PUBLIC, name="dashboard")
async def dashboard_page() -> Response[bytes]:
    """The page shell: the script shows the view the address names (the server echoes nothing of it)."""
    return FILES.response("index.html")


@get("/dashboard/assets/{name:str}", include_in_schema=False, opt=PUBLIC, name="dashboard-assets")
async def dashboard_asset(name: AssetName) -> Response[bytes]:
    """The dashboard's scripts and style sheet (public, like the page: they hold no data)."""
    return FILES.response(name)
