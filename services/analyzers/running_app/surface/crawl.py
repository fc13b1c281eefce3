"""A bounded crawl of the running app: links and forms (with their fields) of its HTML pages, the API calls its
served JavaScript makes (`fetch`, `axios`, `XMLHttpRequest`, URL strings), and the OpenAPI document it serves.

Only GETs, only on the app's own targets, at most `max_pages` pages; links that would log out or delete are not
followed.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

from services.analyzers.running_app.client import Fetched, fetch
from services.analyzers.running_app.surface.documents import openapi_endpoints, served_openapi
from services.analyzers.running_app.surface.model import Endpoint, Field, FieldType, Location

AVOID = re.compile(r"logout|log-out|signout|sign-out|delete|remove|destroy|reset", re.IGNORECASE)
JS_TYPES = ("javascript", "ecmascript")
# A path in JavaScript: a quoted or template string starting with `/` (or a full http URL), `${x}` kept as a parameter.
JS_URL = re.compile(r"""(['"`])((?:https?://[^'"`\s/]+)?(?:\$\{[^}]{1,60}\})?/[A-Za-z0-9_\-./{}$:]*)\1""")
CALL = re.compile(
    r"""\b(fetch|axios(?:\s*\.\s*(get|post|put|patch|delete))?|\.open)\s*\(\s*(?:['"](GET|POST|PUT|PATCH|DELETE)['"]\s*,\s*)?"""
)
METHOD = re.compile(r"""method\s*:\s*['"](\w+)['"]""", re.IGNORECASE)
JSON_BODY = re.compile(r"""JSON\.stringify\s*\(\s*\{([^{}]*)\}""")
STATIC = re.compile(r"\.(css|png|jpe?g|gif|svg|ico|woff2?|ttf|map|webp)$", re.IGNORECASE)


@dataclass
class Page:
    """What one HTML page links to: hrefs, forms (action, method, fields) and scripts (sources, inline text)."""

    links: list[str] = field(default_factory=list)
    forms: list[tuple[str, str, list[Field]]] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    inline: list[str] = field(default_factory=list)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._form: tuple[str, str, list[Field]] | None = None
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "a" and values.get("href"):
            self.page.links.append(values["href"])
        elif tag == "form":
            method = (values.get("method") or "GET").upper()
            self._form = (values.get("action", ""), method, [])
            self.page.forms.append(self._form)
        elif (
            tag in ("input", "textarea", "select", "button") and self._form is not None and values.get("name")
        ):
            location: Location = "query" if self._form[1] == "GET" else "form"
            kind: FieldType = "file" if values.get("type") == "file" else "string"
            self._form[2].append(
                Field(name=values["name"], location=location, type=kind, example=values.get("value") or None)
            )
        elif tag == "script":
            if values.get("src"):
                self.page.scripts.append(values["src"])
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.page.inline.append(data)


def parse_page(html: str) -> Page:
    parser = _PageParser()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # html.parser gives up on some broken markup: keep what it read
        pass
    return parser.page


def _template(path: str) -> str:
    """`${API}/notes/${note.id}` → `/notes/{id}`; a full URL → its path."""
    path = re.sub(r"^\$\{[^}]*\}", "", path)
    if path.startswith(("http://", "https://")):
        path = urlsplit(path).path or "/"
    names: list[str] = []

    def parameter(match: re.Match[str]) -> str:
        name = re.sub(r"\W", "_", match.group(1).split(".")[-1].strip()) or f"p{len(names)}"
        names.append(name)
        return "{" + name + "}"

    return re.sub(r"\$\{([^}]*)\}", parameter, path).split("?", 1)[0]


def script_endpoints(text: str) -> list[Endpoint]:
    """API calls a script makes: the URL of each `fetch`/`axios`/`open` call with its method and JSON body fields,
    and any other path-like string it holds (as a GET)."""
    endpoints: list[Endpoint] = []
    called: set[str] = set()
    for call in CALL.finditer(text):
        url = JS_URL.match(text, call.end())
        if url is None:
            continue
        path = _template(url.group(2))
        window = text[call.end() : call.end() + 400]
        method = (call.group(3) or call.group(2) or "").upper()
        if not method:
            found = METHOD.search(window)
            method = found.group(1).upper() if found else "GET"
        fields = [Field(name=name, location="path") for name in re.findall(r"\{(\w+)\}", path)]
        body = JSON_BODY.search(window)
        if body and method != "GET":
            for part in body.group(1).split(","):
                name = part.split(":", 1)[0].strip().strip("'\"")
                if re.fullmatch(r"[A-Za-z_$][\w$]*", name):
                    fields.append(Field(name=name, location="json"))
        called.add(path)
        endpoints.append(Endpoint(method=method, path=path, fields=fields, found_by=["crawl"]))
    for match in JS_URL.finditer(text):
        path = _template(match.group(2))
        if path in called or len(path) < 2 or STATIC.search(path) or "//" in path:
            continue
        called.add(path)
        fields = [Field(name=name, location="path") for name in re.findall(r"\{(\w+)\}", path)]
        endpoints.append(Endpoint(method="GET", path=path, fields=fields, found_by=["crawl"]))
    return endpoints


@dataclass
class CrawlResult:
    endpoints: list[Endpoint]
    pages: int
    exchanges: list[Fetched]


async def crawl(
    client: httpx.AsyncClient,
    targets: dict[str, str],
    *,
    api_target: str,
    max_pages: int,
    seeds: list[str] | None = None,
) -> CrawlResult:
    """Breadth-first from each target's root (and `seeds` on the API target), at most `max_pages` GETs in all.

    `targets` maps a target's name (`backend`, `frontend`) to its base URL; paths found in scripts are the API's
    (`api_target`), links and forms belong to the page's own target.
    """
    endpoints: list[Endpoint] = []
    exchanges: list[Fetched] = []
    queue: deque[tuple[str, str]] = deque((name, "/") for name in targets)
    queue.extend((api_target, seed) for seed in seeds or [])
    seen: set[tuple[str, str]] = set()
    _, served, looked = await served_openapi(client, targets[api_target], max_requests=max_pages // 4)
    exchanges += looked
    if served is not None:
        endpoints += openapi_endpoints(served, api_target)
    while queue and len(exchanges) < max_pages:
        target, path = queue.popleft()
        if (target, path) in seen:
            continue
        seen.add((target, path))
        base = targets[target].rstrip("/")
        answer = await fetch(client, "GET", base + path)
        exchanges.append(answer)
        if answer.status is None or answer.status >= 400:
            continue
        if (target, path) != (target, "/"):
            query = [Field(name=k, location="query", example=v) for k, v in parse_qsl(urlsplit(path).query)]
            endpoints.append(
                Endpoint(
                    method="GET", path=path.split("?", 1)[0], target=target, fields=query, found_by=["crawl"]
                )
            )
        text = answer.body.decode("utf-8", errors="replace")
        if any(kind in answer.content_type for kind in JS_TYPES):
            endpoints += [_on(e, api_target) for e in script_endpoints(text)]
            continue
        if answer.content_type != "text/html":
            continue
        page = parse_page(text)
        for inline in page.inline:
            endpoints += [_on(e, api_target) for e in script_endpoints(inline)]
        for action, method, fields in page.forms:
            local = _local(base, path, action or path)
            if local is not None:
                endpoints.append(
                    Endpoint(
                        method=method,
                        path=local.split("?", 1)[0],
                        target=target,
                        fields=fields,
                        found_by=["crawl"],
                    )
                )
        for href in [*page.links, *page.scripts]:
            local = _local(base, path, href)
            if local is not None and not AVOID.search(local) and (target, local) not in seen:
                queue.append((target, local))
    return CrawlResult(endpoints=endpoints, pages=len(exchanges), exchanges=exchanges)


def _on(endpoint: Endpoint, target: str) -> Endpoint:
    return Endpoint(
        method=endpoint.method,
        path=endpoint.path,
        target=target,
        fields=endpoint.fields,
        found_by=endpoint.found_by,
    )


def _local(base: str, page: str, href: str) -> str | None:
    """The path and query of `href` when it stays on `base`'s origin, else None."""
    if href.startswith(("javascript:", "mailto:", "tel:", "data:", "#")):
        return None
    absolute = urljoin(base + page, href)
    parts, origin = urlsplit(absolute), urlsplit(base)
    if (parts.scheme, parts.netloc) != (origin.scheme, origin.netloc):
        return None
    path = parts.path or "/"
    prefix = origin.path.rstrip("/")
    if prefix and path.startswith(prefix):
        path = path[len(prefix) :] or "/"
    return path + (f"?{parts.query}" if parts.query else "")
