"""The browser pages: the dashboard, the trace page, the API docs page and the files every page shares."""

from __future__ import annotations

from litestar import Router

from services.gateway.auth import PUBLIC
from services.gateway.pages.api_docs import docs_assets, docs_page_file
from services.gateway.pages.dashboard.routes import dashboard_asset, dashboard_page
from services.gateway.pages.shell import shared_asset
from services.gateway.pages.traces.page import trace_asset, trace_page

router = Router(
    "/",
    route_handlers=[
        trace_page,
        trace_asset,
        dashboard_page,
        dashboard_asset,
        shared_asset,
        docs_assets(PUBLIC),
        docs_page_file,
    ],
)
