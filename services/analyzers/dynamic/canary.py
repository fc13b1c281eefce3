"""The marker listener an SSRF check watches: an app that fetches a URL it was given asks it for a path with the
check's token, and the check reads the paths it was asked for.

For an app Assay started, the listener runs inside the app's sandbox (services/orchestrator/apps/inside.py), on the
port the analyze frame names (ASSAY_CANARY_PORT), reachable from the app and, through Assay's forwarding, from the
analyzer. For an app the request names by URL, the check runs its own listener on loopback (`LocalCanary`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx

from services.analyzers.running_app.client import fetch
from services.orchestrator.apps.inside import CANARY_HITS_PATH, serve_canary


class Canary:
    """Where a listener is (its base URL, which the app is given) and how to read its hits."""

    def __init__(self, base: str, local: list[str] | None = None) -> None:
        self.base = base.rstrip("/")
        self.local = local  # the hits of a listener in this process, read without a request

    def url(self, token: str) -> str:
        return f"{self.base}/{token}"

    async def hits(self, client: httpx.AsyncClient) -> set[str]:
        """The paths the listener was asked for so far (without their leading `/`)."""
        if self.local is not None:
            paths: list[object] = list(self.local)
        else:
            answer = await fetch(client, "GET", self.base + CANARY_HITS_PATH)
            try:
                paths = json.loads(answer.body) if answer.status == 200 else []
            except ValueError:
                return set()
        return {str(path).lstrip("/").split("?", 1)[0] for path in paths if isinstance(path, str)}


@contextlib.asynccontextmanager
async def local_canary() -> AsyncIterator[Canary]:
    """A listener on a free loopback port for as long as the block runs."""
    hits: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_canary(hits, reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield Canary(f"http://127.0.0.1:{port}", local=hits)
    finally:
        server.close()
        await server.wait_closed()
