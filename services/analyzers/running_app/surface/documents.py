"""Endpoints the app's documents promise: an OpenAPI (or Swagger 2) document, JSON or YAML, shipped in the app folder
or served by the running app (`/openapi.json` …), and the app's `requirements.json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import yaml

from services.analyzers.running_app.client import Fetched, fetch
from services.analyzers.running_app.requirements import Requirements
from services.analyzers.running_app.surface.model import Endpoint, Field, FieldType, Location

# Where an app folder keeps its OpenAPI document, in the order they are looked for.
OPENAPI_FILES = tuple(
    f"{folder}{name}.{suffix}"
    for folder in ("", "backend/", "docs/", "api/")
    for name in ("openapi", "swagger")
    for suffix in ("json", "yaml", "yml")
)
SERVED_DOCUMENTS = (
    "/openapi.json",
    "/swagger.json",
    "/api/openapi.json",
    "/api/swagger.json",
    "/v3/api-docs",
    "/api-docs",
    "/api-docs.json",  # swagger-jsdoc beside swagger-ui-express
    "/apispec_1.json",  # flasgger
    "/openapi.yaml",
)
MAX_DOCUMENT_BYTES = 512 * 1024
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


def resolve(document: dict[str, Any], node: Any, depth: int = 0) -> Any:
    """`node` with a local `$ref` followed (`#/components/schemas/Note`; a few levels at most: documents may be
    cyclic); {} for a reference to another document."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and depth < 8:
        reference = node["$ref"]
        if not reference.startswith("#/"):
            return {}
        node = document
        for part in reference[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")  # JSON Pointer's escapes
            node = node.get(part, {}) if isinstance(node, dict) else {}
        depth += 1
    return node


def _schema_fields(document: dict[str, Any], schema: Any, location: Location) -> list[Field]:
    schema = resolve(document, schema)
    if not isinstance(schema, dict):
        return []
    properties = schema.get("properties") or {}
    for part in schema.get("allOf") or []:
        resolved = resolve(document, part)
        if isinstance(resolved, dict):
            properties = {**(resolved.get("properties") or {}), **properties}
    fields = []
    for name, spec in properties.items():
        spec = resolve(document, spec)
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


def base_path(document: dict[str, Any]) -> str:
    """The path prefix of every operation: Swagger 2's `basePath`, or the first server's URL when it is a path."""
    if "swagger" in document:
        return str(document.get("basePath") or "").rstrip("/")
    servers = document.get("servers") or []
    url = servers[0].get("url", "") if servers and isinstance(servers[0], dict) else ""
    return url.rstrip("/") if isinstance(url, str) and url.startswith("/") else ""


def openapi_endpoints(document: dict[str, Any], target: str = "backend") -> list[Endpoint]:
    """The operations of an OpenAPI 3 or Swagger 2 document, with their parameters and body fields."""
    base = base_path(document)
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
                parameter = resolve(document, parameter)
                if (
                    not isinstance(parameter, dict)
                    or parameter.get("in") not in IN
                    and parameter.get("in") != "body"
                ):
                    continue
                if parameter.get("in") == "body":
                    fields += _schema_fields(document, parameter.get("schema"), "json")
                    continue
                schema = resolve(document, parameter.get("schema") or parameter)
                kind = (
                    TYPES.get(schema.get("type", "string"), "string")
                    if isinstance(schema, dict)
                    else "string"
                )
                fields.append(
                    Field(name=str(parameter.get("name", "")), location=IN[parameter["in"]], type=kind)
                )
            content = (resolve(document, operation.get("requestBody")) or {}).get("content") or {}
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
    """The document when `data` is an OpenAPI/Swagger document in JSON or YAML, else None."""
    try:
        document = json.loads(data)
    except ValueError:
        try:
            document = yaml.safe_load(data)
        except yaml.YAMLError:
            return None
    return document if is_openapi(document) else None


def shipped_openapi(app_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """The OpenAPI documents the app folder holds, each with its path in the folder (blocking). A symbolic link is
    not followed: what is read stays inside the app."""
    found = []
    for name in OPENAPI_FILES:
        path = app_dir / name
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_DOCUMENT_BYTES:
            continue
        document = parse_openapi(path.read_bytes())
        if document is not None:
            found.append((name, document))
    return found


async def served_openapi(
    client: httpx.AsyncClient, base: str, *, max_requests: int = len(SERVED_DOCUMENTS)
) -> tuple[str | None, dict[str, Any] | None, list[Fetched]]:
    """The OpenAPI document the app at `base` serves at a usual path (the path, the document), None when none of
    the first `max_requests` paths serves one; and the exchanges that looked."""
    exchanges = []
    for path in SERVED_DOCUMENTS[:max_requests]:
        answer = await fetch(client, "GET", base.rstrip("/") + path)
        exchanges.append(answer)
        document = parse_openapi(answer.body) if answer.status == 200 else None
        if document is not None:
            return path, document, exchanges
    return None, None, exchanges


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
