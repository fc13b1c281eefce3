"""The host side of the bridge into a sandbox: a loopback TCP port whose connections are carried to a Unix socket
in the folder shared with the sandbox (where inside.py carries them on to the app). The sandbox has no network of
its own, so this is the only way in, and nothing comes out."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.orchestrator.apps.inside import pipe


async def start_forwarder(port: int, socket_path: Path) -> asyncio.Server:
    """Listen on 127.0.0.1:`port` and forward every connection to `socket_path`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            inner_reader, inner_writer = await asyncio.open_unix_connection(str(socket_path))
        except OSError:
            writer.close()  # the sandbox is not up (yet): the client sees the connection closed
            return
        await asyncio.gather(pipe(reader, inner_writer), pipe(inner_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", port)
