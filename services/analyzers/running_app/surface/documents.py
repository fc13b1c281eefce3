"""Endpoints the app's documents promise: an OpenAPI (or Swagger 2) document, shipped in the app folder or served by
the running app (`/openapi.json` …), and the app's `requirements.json`."""

from __future__ import annotations

import json
from typing import Any

from services.analyzers.running_app.requirements import Requirements
from services.analyzers.running_app.surface.model import Endpoint, Field, FieldType, Location

OPENAPI_FILES = (
    "openapi.json",
    "swagger.json",
    "backend/openapi.json",
    "backend/swagger.json",
    "docs/openapi.json",
)
SERVED_DOCUMENTS = (
    "/openapi.json",
    "/swagger.json",
    "/api/openapi.json",
    "/api/swagger.json",
    "/v3/api-docs",
    "/api-docs",
)
VERBS = ("get", "post", "put", "patch", "delete")
TYPES: dict[str, FieldType] = {
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "string": "string",
}
IN: dict[str, Location] = {
    "query": "query",
    "path": "path",
    "cookie": "cookie",
    "header": "header",
    "formData": "form",
}


def is_openapi(document: object) -> bool:
    return (
        isinstance(document, dict)
        and ("openapi" in document or "swagger" in document)
        and isinstance(document.get("paths"), dict)
    )


def _resolve(document: dict[str, Any], node: Any, depth: int = 0) -> Any:
    """`node` with a local `$ref` followed (a few levels at most: documents may be cyclic)."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and depth < 8:
        reference = node["$ref"]
        if not reference.startswith("#/"):
            return {}
        node = document
        for part in reference[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        depth += 1
    return node


def _schema_fields(document: dict[str, Any], schema: Any, location: Location) -> list[Field]:
    schema = _resolve(document, schema)
    if not isinstance(schema, dict):
        return []
    properties = schema.get("properties") or {}
    for part in schema.get("allOf") or []:
        resolved = _resolve(document, part)
        if isinstance(resolved, dict):
            properties = {**(resolved.get("properties") or {}), **properties}
    fields = []
    for name, spec in properties.items():
        spec = _resolve(document, spec)
        kind = TYPES.get(spec.get("type", "string"), "string") if isinstance(spec, dict) else "string"
        example = spec.get("example") if isinstance(spec, dict) else None
        fields.append(
            Field(
                name=str(name),
                location=location,
                type=kind,
                example=None if example is None else str(example),
            )
        )
    return fields


def openapi_endpoints(document: dict[str, Any], target: str = "backend") -> list[Endpoint]:
    """The operations of an OpenAPI 3 or Swagger 2 document, with their parameters and body fields."""
    base = ""
    if "swagger" in document:
        base = str(document.get("basePath") or "").rstrip("/")
    else:
        servers = document.get("servers") or []
        url = servers[0].get("url", "") if servers and isinstance(servers[0], dict) else ""
        base = url.rstrip("/") if url.startswith("/") else ""
    endpoints = []
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict) or not str(path).startswith("/"):
            continue
        shared = item.get("parameters") or []
        for verb in VERBS:
            operation = item.get(verb)
            if not isinstance(operation, dict):
                continue
            fields: list[Field] = []
            for parameter in [*shared, *(operation.get("parameters") or [])]:
                parameter = _resolve(document, parameter)
                if (
                    not isinstance(parameter, dict)
                    or parameter.get("in") not in IN
                    and parameter.get("in") != "body"
                ):
                    continue
                if parameter.get("in") == "body":
                    fields += _schema_fields(document, parameter.get("schema"), "json")
                    continue
                schema = _resolve(document, parameter.get("schema") or parameter)
                kind = (
                    TYPES.get(schema.get("type", "string"), "string")
                    if isinstance(schema, dict)
                    else "string"
                )
                fields.append(
                    Field(name=str(parameter.get("name", "")), location=IN[parameter["in"]], type=kind)
                )
            content = (_resolve(document, operation.get("requestBody")) or {}).get("content") or {}
            for media, location in (
                ("application/json", "json"),
                ("application/x-www-form-urlencoded", "form"),
                ("multipart/form-data", "form"),
            ):
                if media in content:
                    fields += _schema_fields(document, (content[media] or {}).get("schema"), location)  # type: ignore[arg-type]
                    break
            endpoints.append(
                Endpoint(
                    method=verb.upper(),
                    path=base + str(path),
                    target=target,
                    fields=[f for f in fields if f.name],
                    found_by=["openapi"],
                )
            )
    return endpoints


def parse_openapi(data: bytes) -> dict[str, Any] | None:
    """The document when `data` is an OpenAPI/Swagger JSON document, else None."""
    try:
        document = json.loads(data)
    except ValueError:
        return None
    return document if is_openapi(document) else None


def requirements_endpoints(requirements: Requirements) -> list[Endpoint]:
    """requirements.json's endpoints, each with the fields of its example body (a JSON object)."""
    endpoints = []
    for promised in requirements.endpoints:
        body = promised.body if isinstance(promised.body, dict) else None
        fields = [
            Field(
                name=str(name),
                location="json",
                type=_type_of(value),
                example=None if isinstance(value, (dict, list)) else str(value),
            )
            for name, value in (body or {}).items()
        ]
        endpoints.append(
            Endpoint(
                method=promised.method,
                path=promised.path.split("?", 1)[0],
                fields=fields,
                found_by=["requirements"],
                body=body,
                expected_status=promised.expected_status,
            )
        )
    return endpoints


def _type_of(value: object) -> FieldType:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"
