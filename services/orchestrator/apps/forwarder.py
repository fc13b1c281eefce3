"""The host side of the bridge into a sandbox: a loopback TCP port whose every connection is carried into the
sandbox over a socket pair made for it, one end handed to inside.py through the control channel (channel.py),
which carries it on to the app. No socket is reached by a path the app could replace; the sandbox has no network
of its own, so this is the only way in, and nothing comes out."""

from __future__ import annotations

import asyncio
import socket

from services.orchestrator.apps.channel import Channel
from services.orchestrator.apps.inside import pipe


async def start_forwarder(sock: socket.socket, channel: Channel, name: str) -> asyncio.Server:
    """Listen on `sock` (bound to a loopback port, see ports.reserve_port) and forward every connection to the
    sandbox's process `name`; the server owns the socket from here."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        outer, inner = socket.socketpair()
        try:
            await channel.hand(name, inner)
        except OSError:
            outer.close()
            writer.close()  # the sandbox is gone: the client sees the connection closed
            return
        finally:
            inner.close()  # inside.py holds its own copy now
        inner_reader, inner_writer = await asyncio.open_connection(sock=outer)
        await asyncio.gather(pipe(reader, inner_writer), pipe(inner_reader, writer))

    return await asyncio.start_server(handle, sock=sock)
