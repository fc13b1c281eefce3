"""An attack: one request a check sends to one endpoint, every field of it filled with a plausible value and one
of them (the insertion point) with the check's payload.

Plausible values come from what the surface knows (an example from a document, a path value the crawl saw) or from
the field's name and type (`email` gets an address, `*_id` a number), so that the handler gets past its own
validation and reaches the code the payload is for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import msgspec

from services.analyzers.running_app.surface.model import Endpoint, Field, Location

# Names whose values are URLs get a name that can never resolve (RFC 2606): a plain request never sends the app
# anywhere outside its sandbox.
NEUTRAL_URL = "https://assay.invalid/"
DEFAULTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), value)
    for pattern, value in (
        (r"e-?mail", "assay@example.com"),
        (r"pass(word)?|pwd|secret", "Assay-Pass-1!"),
        (r"url|uri|link|href|website|endpoint|callback|webhook|image|avatar|feed|src", NEUTRAL_URL),
        (r"next|redirect|return|continue|dest|goto|target", "/"),
        (r"(^|_)(id|pk)$|_id$|Id$|^page$|^limit$|^count$|^qty$|^quantity$|^size$|^offset$", "1"),
        (r"price|amount|total|cost", "1"),
        (r"date|time", "2024-01-01"),
        (r"phone|tel", "5550100"),
        (r"file|path|doc|template|page|name_of_file", "assay.txt"),
        (r"host|ip|addr|domain", "127.0.0.1"),
        (r"lang|locale", "en"),
        (r"sort|order", "name"),
        (r"expr|formula|calc|equation", "1+1"),
        (r"user|login|name|author|title", "assay"),
    )
)
TYPE_DEFAULTS = {"integer": "1", "number": "1", "boolean": "true", "file": "assay.txt"}


def default_value(field: Field) -> str:
    """A value the handler is likely to accept for `field`."""
    if field.example is not None:
        return field.example
    for pattern, value in DEFAULTS:
        if pattern.search(field.name):
            return value
    return TYPE_DEFAULTS.get(field.type, "assay")


def ordinary_value(
    field: Field, headers: Mapping[str, str] | None = None, cookies: Mapping[str, str] | None = None
) -> str:
    """The field's value in an ordinary request as the session's user: what the session itself sends for it (its
    Authorization header, its cookie), so that a payload goes after it as the user would send it; else a plausible
    value (`default_value`)."""
    own = None
    if field.location == "header":
        own = next((v for name, v in (headers or {}).items() if name.lower() == field.name.lower()), None)
    elif field.location == "cookie":
        own = (cookies or {}).get(field.name)
    return default_value(field) if own is None else own


def _typed(field: Field, value: str) -> Any:
    """A JSON value of the field's type when `value` is one (so `1` stays a number), else the string."""
    if field.type in ("integer", "number") and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value) if "." in value else int(value)
    if field.type == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


class Attack(msgspec.Struct, frozen=True, kw_only=True):
    """One request as a check sends it: everything needed to send it again, relative to its target."""

    method: str
    target: str  # the target's name: `backend`, `frontend`
    path: str  # path and query, starting with `/`
    headers: dict[str, str] = {}
    body: str | None = None
    timeout_s: float | None = None  # longer than the client's, for checks that make the app wait


class Point(msgspec.Struct, frozen=True, kw_only=True):
    """An insertion point: one field of one endpoint."""

    endpoint: Endpoint
    field: Field

    @property
    def label(self) -> str:
        return f"{self.field.location} parameter '{self.field.name}' of {self.endpoint.method} {self.endpoint.path}"


def build(
    endpoint: Endpoint,
    values: Mapping[tuple[str, Location], str] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    cookies: Mapping[str, str] | None = None,
    body_kind: str | None = None,
    raw_path: str | None = None,
) -> Attack:
    """The request for `endpoint`, each field at its default unless `values` ((name, location) → value) says
    otherwise; `headers` and `cookies` are a session's. `raw_path` replaces the whole path (a payload in it)."""
    values = values or {}
    headers, cookies = headers or {}, cookies or {}

    def value(field: Field) -> str:
        given = values.get((field.name, field.location))
        return ordinary_value(field, headers, cookies) if given is None else given

    path = endpoint.path
    for field in endpoint.located("path"):
        path = path.replace("{" + field.name + "}", quote(value(field), safe=""))
    path = re.sub(r"\{[^}]*\}", "1", path)  # parameters the surface knows no field of
    if raw_path is not None:
        path = raw_path
    query = [(f.name, value(f)) for f in endpoint.located("query")]
    query += [
        (name, v)
        for (name, location), v in values.items()
        if location == "query" and not any(f.name == name for f in endpoint.located("query"))
    ]
    if query:
        path += ("&" if "?" in path else "?") + urlencode(query)
    # a header field replaces the session's header of its name, whatever its case: the app reads one of the two
    header_names = {f.name.lower() for f in endpoint.located("header")}
    sent_headers = {name: v for name, v in headers.items() if name.lower() not in header_names}
    sent_headers.update({f.name: value(f) for f in endpoint.located("header")})
    jar = dict(cookies)
    jar.update({f.name: value(f) for f in endpoint.located("cookie")})
    if jar:
        sent_headers["Cookie"] = "; ".join(f"{name}={v}" for name, v in jar.items())
    body = None
    kind = body_kind or endpoint.body_kind
    if endpoint.method in ("POST", "PUT", "PATCH", "DELETE") and kind is not None:
        fields = [f for f in endpoint.fields if f.location in ("json", "form")]
        document: dict[str, Any] = dict(endpoint.body or {})
        for field in fields:
            document[field.name] = (
                _typed(field, value(field))
                if (field.name, field.location) not in values
                else values[(field.name, field.location)]
            )
        if kind == "json":
            body = json.dumps(document)
            sent_headers["Content-Type"] = "application/json"
        else:
            body = urlencode(
                {name: v if isinstance(v, str) else json.dumps(v) for name, v in document.items()}
            )
            sent_headers["Content-Type"] = "application/x-www-form-urlencoded"
    return Attack(method=endpoint.method, target=endpoint.target, path=path, headers=sent_headers, body=body)


def points(
    endpoint: Endpoint,
    locations: tuple[Location, ...] = ("query", "form", "json", "path", "cookie", "header"),
) -> list[Point]:
    """The endpoint's insertion points, in the order given by `locations`."""
    return [Point(endpoint=endpoint, field=f) for location in locations for f in endpoint.located(location)]
