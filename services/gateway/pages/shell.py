"""What the gateway's browser pages (the trace page, the dashboard) share: public, data-free files served with one
strict set of headers, and the common script and style every page loads (`/assets/`).

A browser sends no bearer token when it loads a page, so no page holds data: each one's script asks for a token
(`page_files/session.js`: the labelled field, kept in the tab's sessionStorage), then reads the JSON API with it.
Every file comes from the gateway's own package: no CDN, so the pages work offline.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated

from litestar import MediaType, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter

from services.gateway.auth import PUBLIC
from services.gateway.headers import PAGE_POLICY

PAGE_HEADERS = {"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"}  # nosniff: headers.py
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": MediaType.HTML,
}
AssetName = Annotated[str, PathParameter(max_length=64)]


class PageFiles:
    """A page's files, read once at import (not on the event loop per request); only the named files are served,
    never the package's .py around them."""

    def __init__(self, package: str, *names: str) -> None:
        folder = Path(str(files(package)))
        self.files = {name: (folder / name).read_bytes() for name in names}

    def response(self, name: str) -> Response[bytes]:
        """One of the files (the page shell, a script or a style sheet) with the pages' headers; 404 for any other."""
        if name not in self.files:
            raise NotFoundException(f"no page file {name!r}")
        return Response(self.files[name], media_type=_MEDIA_TYPES[Path(name).suffix], headers=PAGE_HEADERS)


SHARED = PageFiles("services.gateway.pages.page_files", "session.js", "base.css")


@get("/assets/{name:str}", include_in_schema=False, opt=PUBLIC, name="page-assets")
async def shared_asset(name: AssetName) -> Response[bytes]:
    """The script and style sheet every page loads (public: nothing of a task is in them)."""
    return SHARED.response(name)
