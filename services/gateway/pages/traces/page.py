"""The trace page: `GET /traces/{task_id}` shows a task's spans as a waterfall, one lane per service.

The page and its script and style (`/traces/assets/`) are public and hold no data (services/gateway/pages/shell.py): the
shared script asks for a token and the page's own reads `GET /api/tasks/{task_id}/trace` (and a tool's findings)
with it.
"""

from __future__ import annotations

from litestar import Response, get

from services.gateway.api.tasks.task import TaskIdPath
from services.gateway.auth import PUBLIC
from services.gateway.pages.shell import AssetName, PageFiles

FILES = PageFiles("services.gateway.pages.traces.page_files", "index.html", "trace.js", "trace.css")


@get("/traces/{task_id:str}", include_in_schema=False, opt=PUBLIC, name="trace-page")
async def trace_page(task_id: TaskIdPath) -> Response[bytes]:
    """The page shell; `task_id` is read by the script from the address, the server echoes nothing of it."""
    del task_id  # part of the address only
    return FILES.response("index.html")


@get("/traces/assets/{name:str}", include_in_schema=False, opt=PUBLIC, name="trace-page-assets")
async def trace_asset(name: AssetName) -> Response[bytes]:
    """The page's script or style sheet (public, like the page: nothing of a task is in them)."""
    return FILES.response(name)
