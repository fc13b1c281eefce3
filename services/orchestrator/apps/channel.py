"""The control channel between Assay and an app's sandbox: a socket pair made before the sandbox starts, one end
inherited by inside.py (bwrap keeps inherited descriptors), the other kept by the orchestrator.

Nothing that crosses the boundary travels through a path: the app runs as the same user as inside.py and could
replace any file or socket in a folder they share with a link to something only root may open. Over the channel,
Assay hands inside.py one end of a fresh socket pair per probe (SCM_RIGHTS, with the name of the process it is
for), and inside.py sends back short notes (`{"ended": "backend ended with status 1"}`, `{"listens.backend": "0.0.0.0:5000"}`). It is a
SOCK_SEQPACKET
pair: each note is one record, cut by the kernel at RECORD_MAX bytes, and descriptors sent the other way are
closed unread (the host end never asks for any).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path

from services.orchestrator.apps.listening import LISTENS_NOTE

RECORD_MAX = 4096  # bytes of one note from inside; the kernel drops the rest of a longer record
NAME_MAX = 80  # characters of a note's key
NOTE_MAX = 300  # characters of a note kept (the task's reason quotes it)
NOTE_KEYS = frozenset({"ended"})
DRAIN_WAIT_S = 2.0


class Channel:
    """One sandbox's channel: `inside` is passed into the sandbox (then closed here by `handed_over`)."""

    def __init__(self) -> None:
        self.host, self.inside = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.host.setblocking(False)
        self.notes: dict[str, str] = {}
        self._sending = asyncio.Lock()
        self._listening: asyncio.Task[None] | None = None

    def handed_over(self) -> None:
        """The sandbox holds its own copy of the inside end: close ours, so that its exit reads as the end."""
        self.inside.close()
        self._listening = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                record = await loop.sock_recv(self.host, RECORD_MAX)
            except OSError:
                return
            if not record:
                return
            self._keep(record)

    def _keep(self, record: bytes) -> None:
        """A note's known keys, each cut to NOTE_MAX characters; anything else is ignored."""
        try:
            note = json.loads(record)
        except ValueError:
            return
        if isinstance(note, dict):
            for key, value in note.items():
                known = key in NOTE_KEYS or (key.startswith(LISTENS_NOTE) and len(key) <= NAME_MAX)
                if known and isinstance(value, str):
                    self.notes[key] = value[:NOTE_MAX]

    async def drained(self) -> None:
        """Until every note the sandbox sent is read (it has ended), at most DRAIN_WAIT_S."""
        if self._listening is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._listening), DRAIN_WAIT_S)

    async def hand(self, name: str, connection: socket.socket) -> None:
        """Send `connection` (one end of a socket pair) to inside.py for the process `name`; OSError when the
        sandbox is gone."""
        async with self._sending:
            while True:
                try:
                    socket.send_fds(self.host, [name.encode()], [connection.fileno()])
                    return
                except BlockingIOError:
                    await self._writable()

    async def _writable(self) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def on_writable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_writer(self.host, on_writable)
        try:
            await ready
        finally:
            loop.remove_writer(self.host)

    def close(self) -> None:
        """Both ends closed here; the listener ends."""
        if self._listening is not None:
            self._listening.cancel()
        self.inside.close()
        self.host.close()


async def start_with_channel(argv: list[str], output: Path, channel: Channel) -> asyncio.subprocess.Process:
    """Start `argv` (a sandbox, or inside.py unsandboxed) in its own process group with the channel's inside end
    and its output going to `output` (a file of the orchestrator's, opened here before anything of the app runs)."""
    sink = await asyncio.to_thread(output.open, "wb")
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
            pass_fds=[channel.inside.fileno()],
        )
    except OSError:
        channel.close()
        raise
    finally:
        sink.close()  # the process holds its own copy of the descriptor
    channel.handed_over()
    return process
