"""A value an OpenAPI schema accepts: the example the document gives, else a minimal valid instance built from the
schema (its required properties, each at a value its type, format and bounds admit), so that a call the document
describes gets past the app's validation.

Strings without an example take a plausible value from their name (`email` an address, `password` a strong one;
`attacks.default_value`), fitted to the schema's length bounds. Documents can be cyclic (`$ref` to an ancestor) and
YAML can alias a node into itself: depth is bounded.
"""

from __future__ import annotations

import secrets
from typing import Any

from services.analyzers.dynamic.attacks import default_value
from services.analyzers.running_app.surface.documents import resolve
from services.analyzers.running_app.surface.model import Field

MAX_DEPTH = 8
FORMATS = {
    "email": "assay@example.com",
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00",
    "uri": "https://assay.invalid/",
    "url": "https://assay.invalid/",
    "hostname": "assay.invalid",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "password": "Assay-Pass-1!",
    "byte": "YXNzYXk=",
}
# Names whose values must be new on every call (an account that already exists is refused).
UNIQUE = ("user", "name", "login", "email", "handle")


def example_of(node: dict[str, Any]) -> tuple[bool, Any]:
    """(True, the example) when a schema, parameter or media type gives one (`example`, `examples`, `default`)."""
    if "example" in node:
        return True, node["example"]
    examples = node.get("examples")
    if isinstance(examples, list) and examples:
        return True, examples[0]
    if isinstance(examples, dict) and examples:
        first = next(iter(examples.values()))
        if isinstance(first, dict) and "value" in first:
            return True, first["value"]
    if "default" in node:
        return True, node["default"]
    return False, None


def _merged(document: dict[str, Any], schema: dict[str, Any], depth: int) -> dict[str, Any]:
    """The schema with its `allOf` parts folded in: properties and required lists united, its own keys first."""
    parts = schema.get("allOf")
    if not isinstance(parts, list) or not parts or depth > MAX_DEPTH:
        return schema
    merged = {key: value for key, value in schema.items() if key != "allOf"}
    properties = dict(schema.get("properties") or {})
    required = schema.get("required")
    for part in parts:
        part = resolve(document, part)
        if not isinstance(part, dict):
            continue
        part = _merged(document, part, depth + 1)
        properties = {**(part.get("properties") or {}), **properties}
        if isinstance(part.get("required"), list):
            required = [*(required or []), *(n for n in part["required"] if n not in (required or []))]
        for key, value in part.items():
            merged.setdefault(key, value)
    merged["properties"] = properties
    if required is not None:
        merged["required"] = required
    return merged


def _type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _string(schema: dict[str, Any], name: str) -> str:
    value = FORMATS.get(str(schema.get("format", "")))
    if value is None:
        value = default_value(Field(name=name, location="json"))
    if any(part in name.lower() for part in UNIQUE) and schema.get("format") != "date":
        tag = secrets.token_hex(3)
        value = value.replace("@", f"_{tag}@", 1) if "@" in value else f"{value}_{tag}"
    low, high = int(schema.get("minLength") or 0), schema.get("maxLength")
    if len(value) < low:
        value += "x" * (low - len(value))
    if isinstance(high, int) and len(value) > high:
        value = value[: max(high, low)]
    return value


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str) -> tuple[float | None, bool]:
    """A bound and whether it is strict: OpenAPI 3.0 spells it `minimum` + `exclusiveMinimum: true`, 3.1 gives
    `exclusiveMinimum` the number."""
    strict = schema.get(exclusive)
    if isinstance(strict, (int, float)) and not isinstance(strict, bool):
        return float(strict), True
    value = schema.get(inclusive)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), strict is True
    return None, False


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    value = 1.0
    low, strict_low = _bound(schema, "minimum", "exclusiveMinimum")
    high, strict_high = _bound(schema, "maximum", "exclusiveMaximum")
    if low is not None and (value < low or strict_low and value <= low):
        value = low + (1 if strict_low else 0)
    if high is not None and (value > high or strict_high and value >= high):
        value = high - (1 if strict_high else 0)
    return int(value) if integer else value


def _read_only(document: dict[str, Any], schema: Any) -> bool:
    resolved = resolve(document, schema)
    return isinstance(resolved, dict) and resolved.get("readOnly") is True


def instance(document: dict[str, Any], schema: Any, name: str = "", depth: int = 0) -> Any:
    """A value `schema` accepts: its example (or enum, const, default), else a minimal valid instance; `name` is
    the property's or parameter's name, which suggests a plausible string."""
    schema = resolve(document, schema)
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return None
    if "const" in schema:
        return schema["const"]
    given, example = example_of(schema)
    if given:
        return example
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return next((value for value in enum if value is not None), enum[0])
    for key in ("oneOf", "anyOf"):
        choices = [resolve(document, c) for c in schema.get(key) or []]
        chosen = next((c for c in choices if isinstance(c, dict) and _type(c) != "null"), None)
        if chosen is not None:
            return instance(document, chosen, name, depth + 1)
    schema = _merged(document, schema, depth)
    match _type(schema):
        case "object":
            properties = schema.get("properties") or {}
            required = schema.get("required")
            # a hand-written document often lists no `required`: every property is sent then
            wanted = required if isinstance(required, list) else list(properties)
            return {
                str(key): instance(document, properties[key], str(key), depth + 1)
                for key in wanted
                if key in properties and not _read_only(document, properties[key])
            }
        case "array":
            count = max(int(schema.get("minItems") or 0), 1)
            return [instance(document, schema.get("items") or {}, name, depth + 1) for _ in range(count)]
        case "integer":
            return _number(schema, integer=True)
        case "number":
            return _number(schema, integer=False)
        case "boolean":
            return True
        case "null":
            return None
        case _:
            return _string(schema, name)
