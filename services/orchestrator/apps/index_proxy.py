"""The package index proxy: the only network a preparation sandbox has.

The sandbox has a network namespace of its own (loopback only); pip and npm inside are told to use an HTTP proxy on
that loopback, which inside.py relays to this proxy's Unix socket (bound read-only into the sandbox from a folder
only the orchestrator writes). The proxy answers only `CONNECT host:port` to a host the operator listed
(`ASSAY_PACKAGE_INDEX_HOSTS`, and `ASSAY_APP_INDEX_ALLOW` for indexes an app may name): no other host, no loopback,
no plain HTTP. What it refused is kept for the preparation log.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from services.orchestrator.apps.inside import pipe

HEAD_MAX = 8192  # bytes of a request head
HEAD_WAIT_S = 30.0
CONNECT_WAIT_S = 30.0
HTTPS_PORT = 443
REFUSALS_KEPT = 50


def allows(entries: frozenset[str], host: str, port: int) -> bool:
    """Whether `host:port` is listed: an entry `host` admits port 443, `host:port` that port (names compared as
    written, case aside: DNS cannot widen the list)."""
    for entry in entries:
        name, sep, given = entry.lower().partition(":")
        wanted = int(given) if sep and given.isdigit() else HTTPS_PORT
        if name == host.lower() and wanted == port:
            return True
    return False


class IndexProxy:
    """A CONNECT-only proxy on a Unix socket, to the hosts `hosts` and nothing else."""

    def __init__(self, hosts: frozenset[str]) -> None:
        self.hosts = hosts
        self.refused: list[str] = []
        self._server: asyncio.Server | None = None

    async def start(self, socket_path: Path) -> None:
        """Listen on `socket_path` (in a folder only the orchestrator writes); the sandbox user may connect."""
        self._server = await asyncio.start_unix_server(self._handle, path=str(socket_path))
        await asyncio.to_thread(socket_path.chmod, 0o666)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    def _refuse(self, what: str) -> None:
        if len(self.refused) < REFUSALS_KEPT and what not in self.refused:
            self.refused.append(what)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_WAIT_S)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            writer.close()
            return
        method, _, rest = head[:HEAD_MAX].split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
        target = rest.partition(" ")[0]
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or not port.isdigit():
            self._refuse(f"{method} {target[:200]} (only CONNECT to a package index)")
            await _answer(writer, "405 Method Not Allowed")
            return
        if not allows(self.hosts, host, int(port)):
            self._refuse(f"{target[:200]} (not a package index: ASSAY_PACKAGE_INDEX_HOSTS)")
            await _answer(writer, "403 Forbidden")
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port)), CONNECT_WAIT_S
            )
        except (OSError, TimeoutError):
            await _answer(writer, "502 Bad Gateway")
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def _answer(writer: asyncio.StreamWriter, status: str) -> None:
    writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()
