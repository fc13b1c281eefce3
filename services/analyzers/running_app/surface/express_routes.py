"""Routes in an app's JavaScript backend (Express and its look-alikes), read as text: `app.<verb>(path, …)`,
`router.<verb>`, `router.route(path).<verb>(…)`, routers mounted with `app.use(prefix, router)` (also across files,
through `require`/`import`), and the fields each handler reads (`req.query.x`, `req.body["x"]`,
`const { a, b } = req.body`, `req.params.id`, `req.cookies.x`, `req.get("X-Header")`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import msgspec

from services.analyzers.running_app.surface.model import Endpoint, Field, Handler, Location

VERB = r"(get|post|put|patch|delete|all)"
NAME = r"[A-Za-z_$][\w$]*"
QUOTED = r"""(['"`])([^'"`]*)\3"""
ROUTE = re.compile(rf"\b({NAME})\s*\.\s*{VERB}\s*\(\s*{QUOTED}")
CHAINED = re.compile(rf"\b({NAME})\s*\.\s*route\s*\(\s*(['\"`])([^'\"`]*)\2\s*\)")
CHAINED_VERB = re.compile(rf"\s*\.\s*{VERB}\s*\(")  # matched at the end of `.route(path)`
APP = re.compile(rf"\b(?:const|let|var)\s+({NAME})\s*=\s*(?:express|fastify|Koa|polka)\s*\(")
ROUTER = re.compile(rf"\b(?:const|let|var)\s+({NAME})\s*=\s*(?:express\s*\.\s*)?Router\s*\(")
REQUIRE = re.compile(rf"\b(?:const|let|var)\s+({NAME})\s*=\s*require\s*\(\s*['\"](\.[^'\"]+)['\"]\s*\)")
IMPORT = re.compile(rf"\bimport\s+({NAME})\s+from\s+['\"](\.[^'\"]+)['\"]")
USE = re.compile(
    rf"\b({NAME})\s*\.\s*use\s*\(\s*(['\"`])([^'\"`]*)\2\s*,\s*(?:[^,()]*,\s*)*?({NAME}|require\s*\(\s*['\"](\.[^'\"]+)['\"]\s*\))\s*\)"
)
EXPORT = re.compile(rf"(?:module\.exports\s*=|export\s+default)\s*({NAME})")
PARAMETER = re.compile(r":(\w+)\??")
SOURCES: dict[str, Location] = {
    "query": "query",
    "body": "json",
    "params": "path",
    "cookies": "cookie",
    "signedCookies": "cookie",
    "headers": "header",
}
DOTTED = re.compile(
    r"\breq(?:uest)?\s*\.\s*(query|body|params|cookies|signedCookies|headers)\s*(?:\.\s*([A-Za-z_$][\w$]*)|\[\s*['\"]([^'\"]+)['\"]\s*\])"
)
DESTRUCTURED = re.compile(r"\{([^{}]*)\}\s*=\s*req(?:uest)?\s*\.\s*(query|body|params|cookies|headers)\b")
GETTER = re.compile(r"\breq(?:uest)?\s*\.\s*(?:get|header)\s*\(\s*['\"]([^'\"]+)['\"]")
JS_SUFFIXES = (".js", ".mjs", ".cjs", ".ts")
JSON_PARSER = re.compile(r"\b(?:express|bodyParser)\s*\.\s*json\s*\(")
FORM_PARSER = re.compile(r"\b(?:express|bodyParser)\s*\.\s*urlencoded\s*\(")


@dataclass
class JsFile:
    name: str  # relative to the app folder, posix
    text: str
    routers: set[str] = field(default_factory=set)
    imports: dict[str, str] = field(default_factory=dict)  # local name → file it comes from
    exported: str | None = None


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def call_end(text: str, opening: int) -> int:
    """The offset just past the parenthesis that closes the one at `opening` (strings, templates and comments
    skipped); the end of the text when it never closes."""
    depth = 0
    index = opening
    length = len(text)
    while index < length:
        char = text[index]
        if char in "'\"`":
            index = _string_end(text, index)
            continue
        if text.startswith("//", index):
            index = text.find("\n", index)
            index = length if index < 0 else index
            continue
        if text.startswith("/*", index):
            index = text.find("*/", index + 2)
            index = length if index < 0 else index + 2
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return length


def _string_end(text: str, start: int) -> int:
    quote = text[start]
    index = start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == quote:
            return index + 1
        if quote != "`" and text[index] == "\n":
            return index
        index += 1
    return len(text)


def express_template(path: str) -> str:
    """`/notes/:id` → `/notes/{id}`."""
    return PARAMETER.sub(r"{\1}", path)


def handler_fields(body: str) -> list[Field]:
    """The inputs one handler's text reads."""
    found: dict[tuple[str, str], Field] = {}

    def add(name: str, location: Location) -> None:
        if location == "header":
            name = name.lower()
        found.setdefault((name, location), Field(name=name, location=location))

    for match in DOTTED.finditer(body):
        add(match.group(2) or match.group(3), SOURCES[match.group(1)])
    for match in DESTRUCTURED.finditer(body):
        for part in match.group(1).split(","):
            name = part.split(":", 1)[0].split("=", 1)[0].strip().lstrip(".")
            if re.fullmatch(r"[A-Za-z_$][\w$]*", name):
                add(name, SOURCES[match.group(2)])
    for match in GETTER.finditer(body):
        add(match.group(1), "header")
    return list(found.values())


def body_location(text: str) -> Location:
    """How the app parses bodies: JSON when it installs a JSON parser (or none at all), a form when only
    `urlencoded`."""
    if JSON_PARSER.search(text) or not FORM_PARSER.search(text):
        return "json"
    return "form"


def _resolve_file(base: str, spec: str, names: set[str]) -> str | None:
    joined = str(PurePosixPath(base).parent / spec)
    parts: list[str] = []
    for part in joined.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    candidate = "/".join(parts)
    for option in (
        candidate,
        *(candidate + suffix for suffix in JS_SUFFIXES),
        *(f"{candidate}/index{s}" for s in JS_SUFFIXES),
    ):
        if option in names:
            return option
    return None


def _scan(files: dict[str, JsFile]) -> None:
    names = set(files)
    for js in files.values():
        js.routers = {m.group(1) for m in APP.finditer(js.text)} | {
            m.group(1) for m in ROUTER.finditer(js.text)
        }
        for pattern in (REQUIRE, IMPORT):
            for match in pattern.finditer(js.text):
                resolved = _resolve_file(js.name, match.group(2), names)
                if resolved:
                    js.imports[match.group(1)] = resolved
        exported = EXPORT.search(js.text)
        js.exported = exported.group(1) if exported else None


def _mounts(files: dict[str, JsFile]) -> dict[tuple[str, str], tuple[tuple[str, str], str]]:
    """(file, router) → ((file, parent router), prefix) for every `parent.use(prefix, router)`."""
    mounts: dict[tuple[str, str], tuple[tuple[str, str], str]] = {}
    names = set(files)
    for js in files.values():
        for match in USE.finditer(js.text):
            parent, prefix, child_name, required = (
                match.group(1),
                match.group(3),
                match.group(4),
                match.group(5),
            )
            if required:
                target_file = _resolve_file(js.name, required, names)
                child = (target_file, files[target_file].exported or "") if target_file else None
            elif child_name in js.imports:
                target_file = js.imports[child_name]
                child = (target_file, files[target_file].exported or "")
            else:
                child = (js.name, child_name)
            if child is not None and child[1]:
                mounts[child] = ((js.name, parent), prefix.rstrip("/"))
    return mounts


def _prefix(key: tuple[str, str], mounts: dict[tuple[str, str], tuple[tuple[str, str], str]]) -> str:
    prefix = ""
    seen = set()
    while key in mounts and key not in seen:
        seen.add(key)
        key, part = mounts[key]
        prefix = part + prefix
    return prefix


def javascript_endpoints(root: Path, paths: list[Path]) -> list[Endpoint]:
    """Every route the JavaScript files under `root` declare, with handlers and fields (blocking)."""
    files = {}
    for path in paths:
        try:
            files[path.relative_to(root).as_posix()] = JsFile(
                path.relative_to(root).as_posix(), path.read_text(errors="replace")
            )
        except OSError:
            continue
    _scan(files)
    mounts = _mounts(files)
    body = body_location("\n".join(js.text for js in files.values()))
    endpoints: list[Endpoint] = []
    for js in files.values():
        routes: list[tuple[str, str, str, int]] = []  # owner, verb, path, offset of the opening parenthesis
        for match in ROUTE.finditer(js.text):
            if match.group(1) in js.routers or match.group(1) in ("app", "router", "api", "server"):
                routes.append(
                    (match.group(1), match.group(2), match.group(4), js.text.index("(", match.end(2)))
                )
        for match in CHAINED.finditer(js.text):
            position = match.end()
            while chained := CHAINED_VERB.match(js.text, position):
                opening = chained.end() - 1
                routes.append((match.group(1), chained.group(1), match.group(3), opening))
                position = call_end(js.text, opening)
        for owner, verb, route_path, opening in routes:
            end = call_end(js.text, opening)
            handler = Handler(
                path=js.name,
                line=_line(js.text, opening),
                end_line=_line(js.text, end),
                function=f"{owner}.{verb}",
            )
            template = express_template(_prefix((js.name, owner), mounts) + route_path)
            fields = [Field(name=name, location="path") for name in PARAMETER.findall(route_path)]
            fields += [
                msgspec.structs.replace(f, location=body) if f.location == "json" else f
                for f in handler_fields(js.text[opening:end])
                if f.location != "path"
            ]
            methods = ["GET", "POST", "PUT", "PATCH", "DELETE"] if verb == "all" else [verb.upper()]
            for method in methods:
                endpoints.append(
                    Endpoint(
                        method=method,
                        path=template if template.startswith("/") else "/" + template,
                        fields=fields,
                        found_by=["source"],
                        handler=handler,
                    )
                )
    return endpoints
