"""Headers every answer of the gateway carries, whatever route (or none) made it.

`X-Content-Type-Options: nosniff` on all of them, JSON included: a browser never guesses another type than the one
said. An HTML answer that sets no Content-Security-Policy of its own (the API docs page, which Litestar renders,
its error pages) gets the pages' policy: only the gateway's own scripts, styles and images, no frames.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

# The pages run only their own scripts and talk only to this gateway; no frame may embed them. Images may also be
# `data:` URIs (the API docs page's style sheet draws its icons so): an image cannot run anything.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


async def security_headers(message: Message, scope: Scope) -> None:
    """Litestar `before_send` hook: the headers above, added to the start of each HTTP answer."""
    del scope
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    headers["X-Content-Type-Options"] = "nosniff"
    if headers.get("content-type", "").startswith("text/html") and "content-security-policy" not in headers:
        headers["Content-Security-Policy"] = PAGE_POLICY
