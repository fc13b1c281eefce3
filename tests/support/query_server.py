"""A bare HTTP server on loopback whose every answer is a function of the request's query, for tests of a check's
judgement where the server's behaviour must be exactly known (a delay, an answer that changes with time)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, urlsplit

Handler = Callable[[dict[str, list[str]]], Awaitable[bytes]]  # the parsed query → the body (HTTP 200)


@asynccontextmanager
async def query_server(handler: Handler) -> AsyncIterator[str]:
    """Serve `handler` on a free loopback port; yields the base URL."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        body = await handler(parse_qs(urlsplit(request_line.split(" ")[1]).query))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    listening = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with listening:
        yield f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}"
