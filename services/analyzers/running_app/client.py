"""Fetching from the app under test: one HTTP client shape and a snapshot of each exchange that never raises.

The checks talk only to the target URLs they are given (apps on loopback, in the usual case), so the client
ignores proxy settings from the environment, follows no redirect, keeps timeouts short so that a dead target costs
seconds, not minutes, and refuses, before connecting, any request outside the targets policy
(shared/operations/target_policy.py): whatever a check or a redirect's Location asks for, nothing else is ever touched.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import msgspec

from shared.operations.target_policy import TargetNotAllowed, TargetPolicy

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 5.0
# enough to recognise a file by its content; a backup archive is not downloaded whole
MAX_BODY_BYTES = 256 * 1024
USER_AGENT = "assay-dynamic/1 (+security check of a generated app)"


class TargetRefused(httpx.TransportError):
    """A request outside the targets policy, stopped before any connection (a `fetch` records it as its error)."""


class PolicyTransport(httpx.AsyncBaseTransport):
    """Checks every request's URL against the targets policy, then hands it to the real transport."""

    def __init__(self, policy: TargetPolicy, inner: httpx.AsyncBaseTransport) -> None:
        self.policy = policy
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            self.policy.check(str(request.url))
        except TargetNotAllowed as error:
            raise TargetRefused(str(error), request=request) from error
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def http_client(
    policy: TargetPolicy, *, timeout_s: float = READ_TIMEOUT_S, connections: int = 16
) -> httpx.AsyncClient:
    """A client for probing an app: only targets `policy` allows, short timeouts, no redirects, no proxies from
    the environment.

    Certificates are not verified: the targets are the apps under test, often behind self-signed certificates,
    and nothing secret is sent to them.
    """
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    inner = httpx.AsyncHTTPTransport(verify=False, trust_env=False, limits=limits)
    return httpx.AsyncClient(
        transport=PolicyTransport(policy, inner),
        timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


class Fetched(msgspec.Struct, frozen=True, kw_only=True):
    """One request and what came back; `status` is None when no HTTP response arrived (see `error`)."""

    method: str
    url: str
    status: int | None = None
    headers: list[tuple[str, str]] = []  # in the order received, names lower-cased; repeated headers kept
    body: bytes = b""
    truncated: bool = False
    elapsed_ms: float = 0.0
    error: str | None = None

    @property
    def answered(self) -> bool:
        return self.status is not None

    def header(self, name: str) -> str | None:
        """The last value of a header (the one a browser acts on), None when absent."""
        values = self.header_list(name)
        return values[-1] if values else None

    def header_list(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased ("" when absent)."""
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()

    def summary(self) -> dict[str, Any]:
        """The exchange without its body: what a raw output records."""
        return {
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "elapsed_ms": self.elapsed_ms,
            "headers": [list(pair) for pair in self.headers],
            "body_bytes": len(self.body),
            "error": self.error,
        }


def describe_error(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# What a kept-alive connection the server closed under a request raises: the request never reached the app (a server
# may close it after an error answer of its own, and the pool hands it out before noticing).
STALE_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


async def fetch(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
    content: bytes | None = None,
    timeout_s: float | None = None,
) -> Fetched:
    """Send one request and keep at most MAX_BODY_BYTES of the answer; transport problems become `error`. A
    connection closed under the request is replaced and the request sent once more on a new one.

    `content` is a body already encoded (its content type in `headers`); `timeout_s` overrides the client's read
    timeout for this request (a check that makes the app wait on purpose)."""
    extra: dict[str, Any] = {} if json_body is None else {"json": json_body}
    if content is not None:
        extra["content"] = content
    if timeout_s is not None:
        extra["timeout"] = httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s))
    for attempt in (1, 2):
        started = time.monotonic()
        try:
            return await _exchange(client, method, url, headers, extra, started)
        except STALE_CONNECTION as error:
            if attempt == 1:
                continue
            failure: BaseException = error
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            failure = error
        return Fetched(
            method=method,
            url=url,
            elapsed_ms=round((time.monotonic() - started) * 1000, 2),
            error=describe_error(failure),
        )
    raise AssertionError("unreachable: the second attempt returns")


async def _exchange(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    headers: dict[str, str] | None,
    extra: dict[str, Any],
    started: float,
) -> Fetched:
    async with client.stream(method, url, headers=headers, **extra) as response:
        body = bytearray()
        truncated = False
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                truncated = True
                break
        return Fetched(
            method=method,
            url=url,
            status=response.status_code,
            headers=[
                (key.decode("latin-1").lower(), value.decode("latin-1"))
                for key, value in response.headers.raw
            ],
            body=bytes(body[:MAX_BODY_BYTES]),
            truncated=truncated,
            elapsed_ms=round((time.monotonic() - started) * 1000, 2),
        )


def join_url(base: str, path: str) -> str:
    """`path` (absolute, starting with "/") under a target URL that may carry a path prefix of its own."""
    return base.rstrip("/") + "/" + path.lstrip("/")
