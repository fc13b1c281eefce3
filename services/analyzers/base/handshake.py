"""Who may open a WebSocket to an analyzer: a client that shows the shared token (ASSAY_ANALYZER_TOKEN).

Checked in the opening handshake, before any frame is read: `Authorization: Bearer <token>`, compared in constant
time; anything else gets a 401 and no connection.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from shared.operations.errors import AssayError

log = logging.getLogger(__name__)

ProcessRequest = Callable[[ServerConnection, Request], Response | None]


class MissingAnalyzerToken(AssayError, RuntimeError):
    """An analyzer was started without ASSAY_ANALYZER_TOKEN."""


def require_token(token: str | None) -> ProcessRequest:
    """A websockets `process_request` hook admitting only handshakes that carry `token`."""
    if not token:
        raise MissingAnalyzerToken(
            "ASSAY_ANALYZER_TOKEN is not set: start the analyzers with `assay up` (which makes one) or give them "
            "and the orchestrator the same token"
        )
    expected = f"Bearer {token}".encode()

    def check(connection: ServerConnection, request: Request) -> Response | None:
        given = request.headers.get("Authorization", "").encode()
        if hmac.compare_digest(given, expected):
            return None
        log.warning("refused a handshake without the analyzer token from %s", connection.remote_address)
        return connection.respond(
            HTTPStatus.UNAUTHORIZED, "analyzer token required (Authorization: Bearer …)\n"
        )

    return check
