"""The static server of an app's frontend (stdlib only: it runs inside the app's sandbox, beside inside.py).

Python's `http.server` listens with a backlog of 5: under the load test's concurrency the kernel drops connection
attempts and the client's retry comes a second later, so every frontend showed a p99 of about 1 s that was Assay's,
not the app's. This one is asyncio, listens with a deep backlog, keeps connections alive, and keeps the files it
served in memory (checked against their modification time), so a latency finding about a frontend is its assets'.

Usage: `python static_server.py <port> <folder>`; serves GET and HEAD, `index.html` for a folder, nothing outside
the folder.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import sys
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

BACKLOG = 4096
HEAD_LIMIT = 65536
IDLE_S = 30.0
CACHE_MAX_BYTES = 8 * 1024 * 1024  # files above this are read on every request, not kept
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class Files:
    """The folder's files by URL path, read once and kept while unchanged."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self.kept: dict[str, tuple[float, bytes]] = {}

    def find(self, url_path: str) -> str | None:
        """The file a URL path names inside the root (a folder's index.html), or None."""
        path = os.path.realpath(os.path.join(self.root, unquote(url_path).lstrip("/")))
        if path != self.root and not path.startswith(self.root + os.sep):
            return None
        if os.path.isdir(path):
            path = os.path.join(path, "index.html")
        return path if os.path.isfile(path) else None

    def kept_body(self, path: str) -> bytes | None:
        """The file's bytes as kept, when it has not changed since (a stat, no read)."""
        kept = self.kept.get(path)
        return kept[1] if kept is not None and kept[0] == os.stat(path).st_mtime else None

    def read(self, path: str) -> bytes:
        """The file's bytes from disk, kept for the next request when small enough."""
        mtime = os.stat(path).st_mtime
        with open(path, "rb") as file:
            body = file.read()
        if len(body) <= CACHE_MAX_BYTES:
            self.kept[path] = (mtime, body)
        return body


def _response(status: int, body: bytes, content_type: str, keep_alive: bool, head: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {REASONS[status]}",
        f"Date: {formatdate(usegmt=True)}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive" if keep_alive else "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else body)


async def serve_connection(files: Files, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Requests of one connection until the client closes it, idles or asks to close."""
    try:
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_S)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            }
            version = parts[2] if len(parts) == 3 else ""
            connection = headers.get("connection", "").lower()
            keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
            if len(parts) != 3 or "content-length" in headers or "transfer-encoding" in headers:
                writer.write(_response(400, b"bad request\n", "text/plain", False, False))
                return
            method, target = parts[0], urlsplit(parts[1]).path or "/"
            head_only = method == "HEAD"
            if method not in ("GET", "HEAD"):
                response = _response(405, b"method not allowed\n", "text/plain", keep_alive, head_only)
            elif (path := files.find(target)) is None:
                response = _response(404, b"not found\n", "text/plain", keep_alive, head_only)
            else:
                kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
                body = files.kept_body(path)
                if body is None:
                    body = await asyncio.to_thread(files.read, path)
                response = _response(200, body, kind, keep_alive, head_only)
            writer.write(response)
            await writer.drain()
            if not keep_alive:
                return
    except (ConnectionError, OSError):
        return
    finally:
        writer.close()


async def serve(port: int, root: str, host: str = "127.0.0.1") -> None:
    """Serve `root` on host:port until cancelled."""
    files = Files(root)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(files, reader, writer)

    server = await asyncio.start_server(handle, host, port, backlog=BACKLOG, limit=HEAD_LIMIT)
    async with server:
        await server.serve_forever()


def main() -> None:
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))


if __name__ == "__main__":
    main()
