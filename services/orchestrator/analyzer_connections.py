"""The orchestrator's connections to analyzer replicas: one persistent WebSocket per replica URL, carrying every
run and health request to that replica at once.

Protocol v1 lets a connection carry several runs, each frame naming its run by `id` (shared/wire/protocol.py). Opening
a connection costs an HTTP upgrade on both sides, more CPU than a no-op run itself, so each replica's connection
is opened on first use and kept. One reader per connection hands every frame to the inbox of the run (or health
request) it names; a frame naming no one is logged and dropped, as before. When the connection closes, every
inbox gets `None`: the runs on it see the loss (and retry once, services/orchestrator/analyzer_client.py) and the
next user opens a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from shared.operations.redact import masked_url
from shared.wire.protocol import (
    MAX_FRAME_BYTES,
    AnalyzerFrame,
    analyzer_auth,
    decode_analyzer_frame,
    encode_frame,
)

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 5.0

Inbox = asyncio.Queue[AnalyzerFrame | None]  # None: the connection is gone


class AnalyzerConnection:
    """One open connection to one replica; `listen(id)` before sending a frame whose answers carry that id."""

    def __init__(self, url: str, websocket: ClientConnection) -> None:
        self.url = url
        self.websocket = websocket
        self.closed = False
        self.lost = ""  # why the connection ended, once it has
        self._inboxes: dict[str, Inbox] = {}
        self._reader = asyncio.create_task(self._read(), name=f"analyzer connection {masked_url(url)}")

    def listen(self, frame_id: str) -> Inbox:
        """The inbox of the frames about `frame_id` from now on (`forget` it once done)."""
        inbox: Inbox = asyncio.Queue()
        if self.closed:
            inbox.put_nowait(None)
        self._inboxes[frame_id] = inbox
        return inbox

    def forget(self, frame_id: str) -> None:
        self._inboxes.pop(frame_id, None)

    async def send(self, frame: msgspec.Struct) -> None:
        """Send one frame; raises websockets' ConnectionClosed when the connection is gone."""
        await self.websocket.send(encode_frame(frame))

    async def _read(self) -> None:
        try:
            async for raw in self.websocket:
                try:
                    frame = decode_analyzer_frame(raw)
                except (msgspec.DecodeError, msgspec.ValidationError) as error:
                    log.warning("analyzer at %s sent an undecodable frame (ignored): %s", self.url, error)
                    continue
                inbox = self._inboxes.get(frame.id or "")
                if inbox is None:
                    log.warning(
                        "analyzer at %s sent a %s frame for %r, which nobody awaits (ignored)",
                        masked_url(self.url),
                        type(frame).__name__,
                        frame.id,
                    )
                    continue
                inbox.put_nowait(frame)
        except ConnectionClosed as error:
            self.lost = str(error)
        finally:
            self.closed = True
            self.lost = self.lost or f"closed ({self.websocket.close_code}: {self.websocket.close_reason})"
            for inbox in self._inboxes.values():
                inbox.put_nowait(None)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.close(), 1.0)
        await asyncio.gather(self._reader, return_exceptions=True)


class AnalyzerConnections:
    """The open connection of each replica URL, opened on first use and again after it closed."""

    def __init__(self, token: str | None = None, open_timeout_s: float = OPEN_TIMEOUT_S) -> None:
        self.token = token  # ASSAY_ANALYZER_TOKEN, sent in every handshake
        self.open_timeout_s = open_timeout_s
        self._open: dict[str, AnalyzerConnection] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    async def get(self, url: str) -> AnalyzerConnection:
        """The open connection to `url`; raises what websockets' connect raises when it cannot be opened
        (OSError, TimeoutError, InvalidHandshake, InvalidURI)."""
        current = self._open.get(url)
        if current is not None and not current.closed:
            return current
        async with self._opening.setdefault(
            url, asyncio.Lock()
        ):  # one opening per URL, however many runs wait
            current = self._open.get(url)
            if current is not None and not current.closed:
                return current
            websocket = await connect(
                url,
                max_size=MAX_FRAME_BYTES,
                open_timeout=self.open_timeout_s,
                close_timeout=1,
                additional_headers=analyzer_auth(self.token),
            )
            self._open[url] = AnalyzerConnection(url, websocket)
            return self._open[url]

    async def close(self) -> None:
        """Close every connection (at shutdown, after the runs were cancelled)."""
        connections, self._open = list(self._open.values()), {}
        await asyncio.gather(*(connection.close() for connection in connections))
