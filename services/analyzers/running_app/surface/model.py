"""What the surface is made of: endpoints, the fields each reads, and where each was found.

A path is a template: `/api/notes/{id}`, whatever the framework spells (`<int:id>`, `:id`, `{id}`), so that one
route found in the source, in an OpenAPI document and by the crawl is one endpoint.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

Location = Literal["query", "form", "json", "path", "cookie", "header"]
FoundBy = Literal["source", "openapi", "requirements", "crawl"]
BodyKind = Literal["json", "form"]
FieldType = Literal["string", "integer", "number", "boolean", "file"]

PARAMETER = re.compile(r"\{([^{}/]+)\}")


class Field(msgspec.Struct, frozen=True, kw_only=True):
    """One input a handler reads: its name, where it arrives, its type when known and an example value."""

    name: str
    location: Location
    type: FieldType = "string"
    example: str | None = None


class Handler(msgspec.Struct, frozen=True, kw_only=True):
    """Where a route's code is: a file relative to the app folder, its first and last line, the function."""

    path: str
    line: int
    end_line: int
    function: str = ""


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    """One method on one path template of one target (`backend`, `frontend`)."""

    method: str
    path: str
    target: str = "backend"
    fields: list[Field] = []
    found_by: list[FoundBy] = []
    handler: Handler | None = None
    body: dict[str, object] | None = None  # an example body a document gives (requirements.json)
    expected_status: int | None = None  # what a document promises this endpoint answers

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.target, self.method, normalize_template(self.path))

    @property
    def body_kind(self) -> BodyKind | None:
        """How the endpoint takes its body: JSON or a form, None when it reads none."""
        locations = {field.location for field in self.fields}
        if "json" in locations or self.body is not None:
            return "json"
        return "form" if "form" in locations else None

    def located(self, location: Location) -> list[Field]:
        return [field for field in self.fields if field.location == location]


class Surface(msgspec.Struct, frozen=True, kw_only=True):
    """Every endpoint found, in a stable order, and what each way of finding them saw."""

    endpoints: list[Endpoint]
    counts: dict[str, int] = {}  # found_by → endpoints
    notes: list[str] = []  # what could not be read, and why

    def on(self, target: str) -> list[Endpoint]:
        return [endpoint for endpoint in self.endpoints if endpoint.target == target]

    def handler_for(self, method: str, path: str, target: str = "backend") -> Handler | None:
        """The handler of the endpoint a concrete path matches (`/api/notes/3` → `/api/notes/{id}`)."""
        for endpoint in self.endpoints:
            if endpoint.target == target and endpoint.method == method and matches(endpoint.path, path):
                if endpoint.handler is not None:
                    return endpoint.handler
        return None


def normalize_template(path: str) -> str:
    """A template with its parameters unnamed (`/a/{id}` and `/a/{note_id}` are one route) and no trailing `/`."""
    path = PARAMETER.sub("{}", path)
    return path.rstrip("/") or "/"


def matches(template: str, path: str) -> bool:
    """Whether a concrete path (no query) is an instance of `template`."""
    pattern = "".join(
        "[^/]+" if part == "{}" else re.escape(part)
        for part in re.split(r"(\{\})", normalize_template(template))
    )
    return re.fullmatch(pattern, path.split("?", 1)[0].rstrip("/") or "/") is not None


def merge(endpoints: list[Endpoint]) -> list[Endpoint]:
    """One endpoint per (target, method, template): fields united, every way it was found kept, the source's
    handler and path names preferred (they say what the code calls its parameters)."""
    merged: dict[tuple[str, str, str], Endpoint] = {}
    for endpoint in endpoints:
        known = merged.get(endpoint.key)
        if known is None:
            merged[endpoint.key] = endpoint
            continue
        first, second = (endpoint, known) if endpoint.handler and not known.handler else (known, endpoint)
        examples = {(f.name, f.location): f.example for f in second.fields if f.example is not None}
        names = {(field.name, field.location) for field in first.fields}
        merged[endpoint.key] = msgspec.structs.replace(
            first,
            fields=[
                *(
                    msgspec.structs.replace(f, example=examples[(f.name, f.location)])
                    if f.example is None and (f.name, f.location) in examples
                    else f
                    for f in first.fields
                ),
                *(f for f in second.fields if (f.name, f.location) not in names),
            ],
            found_by=list(dict.fromkeys([*known.found_by, *endpoint.found_by])),
            body=first.body if first.body is not None else second.body,
            expected_status=first.expected_status or second.expected_status,
        )
    return sorted(merged.values(), key=lambda e: (e.target, normalize_template(e.path), e.method))
