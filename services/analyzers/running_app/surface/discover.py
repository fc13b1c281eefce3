"""The surface of one app, found three ways and merged: its source's routes, its documents (OpenAPI,
requirements.json) and a bounded crawl of the running app."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import msgspec

from services.analyzers.running_app.requirements import RequirementsError, load_requirements
from services.analyzers.running_app.surface.crawl import crawl
from services.analyzers.running_app.surface.documents import (
    openapi_endpoints,
    requirements_endpoints,
    shipped_openapi,
)
from services.analyzers.running_app.surface.express_routes import JS_SUFFIXES, javascript_endpoints
from services.analyzers.running_app.surface.model import Endpoint, Surface, matches, merge
from services.analyzers.running_app.surface.python_routes import python_endpoints

SKIPPED = frozenset(
    {
        "node_modules",
        ".venv",
        "venv",
        "env",
        "__pycache__",
        ".git",
        "tests",
        "test",
        "dist",
        "build",
        "static",
        "public",
        "migrations",
    }
)
MAX_SOURCE_FILES = 400
MAX_FILE_BYTES = 512 * 1024


def source_files(app_dir: Path) -> tuple[list[Path], list[Path]]:
    """The backend's Python and JavaScript files (dependency, test and build folders left out), bounded."""
    root = app_dir / "backend" if (app_dir / "backend").is_dir() else app_dir
    python: list[Path] = []
    javascript: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(name for name in dirs if name not in SKIPPED and not name.startswith("."))
        for name in sorted(files):
            path = Path(folder, name)
            if path.is_symlink() or len(python) + len(javascript) >= MAX_SOURCE_FILES:
                continue
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    continue
            except OSError:
                continue
            if name.endswith(".py"):
                python.append(path)
            elif name.endswith(JS_SUFFIXES) and not name.endswith((".min.js", ".test.js", ".spec.js")):
                javascript.append(path)
    return python, javascript


def source_endpoints(app_dir: Path) -> list[Endpoint]:
    """Routes declared in the app's backend source, handler paths relative to the app folder (blocking)."""
    python, javascript = source_files(app_dir)
    return python_endpoints(app_dir, python) + javascript_endpoints(app_dir, javascript)


def shipped_documents(app_dir: Path) -> list[Endpoint]:
    """Operations of the OpenAPI documents the app folder holds (blocking)."""
    return [endpoint for _, document in shipped_openapi(app_dir) for endpoint in openapi_endpoints(document)]


def attach(endpoints: list[Endpoint]) -> list[Endpoint]:
    """Concrete paths (`/api/notes/1` from requirements.json or the crawl) folded into the source route they are an
    instance of, which keeps the example values as the fields' examples."""
    templates = [e for e in endpoints if e.handler is not None]
    literal = {(e.target, e.method, e.path.rstrip("/") or "/") for e in templates if "{" not in e.path}
    kept = []
    for endpoint in endpoints:
        if (
            endpoint.handler is not None
            or (endpoint.target, endpoint.method, endpoint.path.rstrip("/") or "/") in literal
        ):
            kept.append(endpoint)
            continue
        owner = next(
            (
                t
                for t in templates
                if t is not endpoint
                and t.target == endpoint.target
                and t.method == endpoint.method
                and "{" in t.path
                and "{" not in endpoint.path
                and matches(t.path, endpoint.path)
            ),
            None,
        )
        if owner is None:
            kept.append(endpoint)
            continue
        examples = dict(
            zip(
                [f.name for f in owner.located("path")], _path_values(owner.path, endpoint.path), strict=False
            )
        )
        kept.append(
            msgspec.structs.replace(
                owner,
                fields=[
                    msgspec.structs.replace(f, example=examples.get(f.name, f.example))
                    if f.location == "path"
                    else f
                    for f in owner.fields
                ]
                + [f for f in endpoint.fields if f.location != "path"],
                found_by=endpoint.found_by,
                body=endpoint.body,
                expected_status=endpoint.expected_status,
            )
        )
    return kept


def _path_values(template: str, path: str) -> list[str]:
    values = []
    for expected, given in zip(template.strip("/").split("/"), path.strip("/").split("/"), strict=False):
        if expected.startswith("{"):
            values.append(given)
    return values


async def discover(
    client: httpx.AsyncClient, app_dir: Path | None, targets: dict[str, str], *, max_pages: int
) -> Surface:
    """Every endpoint of the app, each once, with where it was found."""
    notes: list[str] = []
    endpoints: list[Endpoint] = []
    if app_dir is not None:
        endpoints += await asyncio.to_thread(source_endpoints, app_dir)
        endpoints += await asyncio.to_thread(shipped_documents, app_dir)
        try:
            requirements = await load_requirements(app_dir)
        except RequirementsError as error:
            notes.append(str(error))
            requirements = None
        if requirements is not None:
            endpoints += requirements_endpoints(requirements)
    else:
        notes.append("no app folder here: the surface comes from the crawl alone")
    api = "backend" if "backend" in targets else next(iter(targets))
    seeds = sorted({e.path for e in endpoints if e.method == "GET" and "{" not in e.path})[: max_pages // 2]
    crawled = await crawl(client, targets, api_target=api, max_pages=max_pages, seeds=seeds)
    endpoints += crawled.endpoints
    merged = merge(attach(endpoints))
    counts: dict[str, int] = {}
    for endpoint in merged:
        for way in endpoint.found_by:
            counts[way] = counts.get(way, 0) + 1
    counts["crawled_pages"] = crawled.pages
    return Surface(endpoints=merged, counts=counts, notes=notes)
