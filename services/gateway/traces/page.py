"""The trace page: `GET /traces/{task_id}` shows a task's spans as a waterfall, one lane per service.

The page and its script and style (`/traces/assets/`) are public and hold no data: a browser sends no bearer
token when it loads a page, so the script asks for one, keeps it in the tab's sessionStorage and reads
`GET /api/tasks/{task_id}/trace` (and a tool's findings) with it. Every file comes from this package: no CDN.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated

from litestar import MediaType, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter

from services.gateway.auth import PUBLIC
from services.gateway.tasks import TaskIdPath

PAGE_FOLDER = Path(str(files("services.gateway.traces.page_files")))
ASSETS = "/traces/assets"
# The page runs only its own script and talks only to this gateway; no frame may embed it.
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
# Read once at import, not on the event loop per request; only these files are served (not the package's .py).
_PAGE = (PAGE_FOLDER / "index.html").read_bytes()
_ASSETS = {
    "trace.js": ((PAGE_FOLDER / "trace.js").read_bytes(), "text/javascript; charset=utf-8"),
    "trace.css": ((PAGE_FOLDER / "trace.css").read_bytes(), "text/css; charset=utf-8"),
}


@get("/traces/{task_id:str}", include_in_schema=False, opt=PUBLIC, name="trace-page")
async def trace_page(task_id: TaskIdPath) -> Response[bytes]:
    """The page shell; `task_id` is read by the script from the address, the server echoes nothing of it."""
    del task_id  # part of the address only
    return Response(_PAGE, media_type=MediaType.HTML, headers=_HEADERS)


@get(f"{ASSETS}/{{name:str}}", include_in_schema=False, opt=PUBLIC, name="trace-page-assets")
async def trace_asset(name: Annotated[str, PathParameter(max_length=64)]) -> Response[bytes]:
    """The page's script or style sheet (public, like the page: nothing of a task is in them)."""
    if name not in _ASSETS:
        raise NotFoundException(f"no trace page file {name!r}")
    body, media_type = _ASSETS[name]
    return Response(body, media_type=media_type, headers=_HEADERS)
