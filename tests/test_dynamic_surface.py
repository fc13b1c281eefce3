"""The attack surface, read from sources of each framework (routes, prefixes, handlers' file:line and the fields
they read), from OpenAPI documents and from pages and scripts; and the pure parts of the active checks: where a
marker lands in HTML, when two answers are the same page, which keys sign a session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import textwrap
from pathlib import Path

from services.analyzers.dynamic.attacks import build, ordinary_value
from services.analyzers.dynamic.checks.deserialization import pickle_sleep, serialized_kind
from services.analyzers.dynamic.expectations import Contains, Differs, holds, similar
from services.analyzers.dynamic.html_context import executable_context
from services.analyzers.dynamic.proof import attack_finding
from services.analyzers.dynamic.session_keys import signing_key
from services.analyzers.dynamic.unproven import at_most_low_without_proof
from services.analyzers.running_app.surface.crawl import parse_page, script_endpoints
from services.analyzers.running_app.surface.discover import attach, source_endpoints
from services.analyzers.running_app.surface.documents import openapi_endpoints
from services.analyzers.running_app.surface.model import Endpoint, Field, Handler, merge
from shared.results.findings import Finding, Proof
from shared.results.issue_groups import group_keys


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def routes(app: Path) -> dict[str, Endpoint]:
    return {f"{e.method} {e.path}": e for e in source_endpoints(app)}


def fields(endpoint: Endpoint) -> set[tuple[str, str]]:
    return {(f.name, f.location) for f in endpoint.fields}


def test_flask_blueprints_across_files_add_url_rule_and_the_fields_each_handler_reads(tmp_path: Path) -> None:
    app = write(tmp_path, {
        "backend/app.py": """
            from flask import Flask
            from views.orders import orders as order_routes
            app = Flask(__name__)
            app.register_blueprint(order_routes, url_prefix="/api/v2")

            def ping():
                return "pong"

            app.add_url_rule("/ping", "ping", ping)
        """,
        "backend/views/orders.py": """
            from flask import Blueprint, request
            orders = Blueprint("orders", __name__, url_prefix="/orders")

            @orders.route("/<int:order_id>", methods=["GET", "DELETE"])
            def one(order_id):
                fmt = request.args.get("format")
                return fmt

            @orders.post("/")
            def create():
                data = request.get_json() or {}
                coupon = request.cookies.get("coupon")
                return {"sku": data["sku"], "qty": data.get("qty"), "agent": request.headers.get("X-Agent")}
        """,
    })  # fmt: skip
    found = routes(app)
    assert set(found) == {
        "GET /api/v2/orders/{order_id}",
        "DELETE /api/v2/orders/{order_id}",
        "POST /api/v2/orders/",
        "GET /ping",
    }
    one = found["GET /api/v2/orders/{order_id}"]
    assert fields(one) == {("order_id", "path"), ("format", "query")}
    assert [f.type for f in one.fields if f.location == "path"] == ["integer"]
    assert one.handler is not None and (one.handler.path, one.handler.line, one.handler.end_line) == (
        "backend/views/orders.py",
        6,
        8,
    )
    assert fields(found["POST /api/v2/orders/"]) == {
        ("sku", "json"),
        ("qty", "json"),
        ("coupon", "cookie"),
        ("X-Agent", "header"),
    }
    assert found["GET /ping"].handler is not None and found["GET /ping"].handler.function == "ping"


def test_fastapi_routers_with_prefixes_models_forms_headers_and_the_not_found_handler(tmp_path: Path) -> None:
    app = write(tmp_path, {
        "backend/main.py": """
            from fastapi import FastAPI, Form, Header, Depends
            from pydantic import BaseModel
            from routers import users
            app = FastAPI()
            app.include_router(users.router, prefix="/api")

            class Base(BaseModel):
                name: str

            class Item(Base):
                price: float

            @app.post("/items/{shop}")
            async def add(shop: str, item: Item, dry_run: bool = False, token: str = Header(...), user=Depends(lambda: 1)):
                return item

            @app.post("/upload")
            def upload(title: str = Form(...)):
                return title

            @app.exception_handler(404)
            async def missing(request, exc):
                return str(request.url.path)
        """,
        "backend/routers/users.py": """
            from fastapi import APIRouter, Request
            router = APIRouter(prefix="/users")

            @router.get("/{user_id}")
            async def read(user_id: int, request: Request):
                body = await request.json()
                return body.get("field")
        """,
    })  # fmt: skip
    found = routes(app)
    assert fields(found["POST /items/{shop}"]) == {
        ("shop", "path"),
        ("name", "json"),
        ("price", "json"),
        ("dry_run", "query"),
        ("token", "header"),
    }
    assert fields(found["POST /upload"]) == {("title", "form")}
    assert fields(found["GET /api/users/{user_id}"]) == {("user_id", "path"), ("field", "json")}
    assert found["GET /{path}"].handler is not None and found["GET /{path}"].handler.function == "missing"


def test_aiohttp_route_tables_and_router_calls(tmp_path: Path) -> None:
    app = write(tmp_path, {
        "backend/server.py": """
            from aiohttp import web
            routes = web.RouteTableDef()

            @routes.get("/notes/{note_id}")
            async def note(request):
                return web.json_response({"id": request.match_info["note_id"], "q": request.query.get("q")})

            async def save(request):
                form = await request.post()
                return web.Response(text=form["text"])

            app = web.Application()
            app.router.add_post("/notes", save)
            app.add_routes(routes)
        """,
    })  # fmt: skip
    found = routes(app)
    assert fields(found["GET /notes/{note_id}"]) == {("note_id", "path"), ("q", "query")}
    assert fields(found["POST /notes"]) == {("text", "form")}
    assert found["POST /notes"].handler is not None and found["POST /notes"].handler.line == 9


def test_express_routers_mounted_from_other_files_route_chains_and_destructured_bodies(
    tmp_path: Path,
) -> None:
    app = write(tmp_path, {
        "backend/server.js": """
            const express = require('express');
            const items = require('./routes/items');
            const app = express();
            app.use(express.json());
            app.use('/api/items', items);
            app.get('/health', (req, res) => res.send('ok'));
            app.listen(3000);
        """,
        "backend/routes/items.js": """
            const express = require('express');
            const router = express.Router();
            router.get('/:id', (req, res) => {
              res.json({ id: req.params.id, view: req.query['view'], who: req.get('X-User') });
            });
            router.route('/')
              .post((req, res) => {
                const { name, price = 0 } = req.body;
                res.status(201).json({ name, price, theme: req.cookies.theme });
              })
              .get((req, res) => res.json([]));
            module.exports = router;
        """,
    })  # fmt: skip
    found = routes(app)
    assert set(found) == {"GET /health", "GET /api/items/{id}", "POST /api/items/", "GET /api/items/"}
    one = found["GET /api/items/{id}"]
    assert fields(one) == {("id", "path"), ("view", "query"), ("x-user", "header")}
    assert one.handler is not None and (one.handler.path, one.handler.line, one.handler.end_line) == (
        "backend/routes/items.js",
        4,
        6,
    )
    assert fields(found["POST /api/items/"]) == {("name", "json"), ("price", "json"), ("theme", "cookie")}


def test_openapi_documents_pages_and_scripts_and_concrete_paths_folded_into_their_routes() -> None:
    document = {
        "openapi": "3.0.0",
        "paths": {"/api/orders/{id}": {"parameters": [{"name": "id", "in": "path", "schema": {"type": "integer"}}],
                  "put": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/O"}}}}}}},
        "components": {"schemas": {"O": {"properties": {"note": {"type": "string"}}}}},
    }  # fmt: skip
    (put,) = openapi_endpoints(document)
    assert (put.method, put.path, fields(put)) == (
        "PUT",
        "/api/orders/{id}",
        {("id", "path"), ("note", "json")},
    )
    page = parse_page(
        '<a href="/about">a</a><form method="post" action="/subscribe"><input name="email"></form><script src="/app.js"></script>'
    )
    assert page.links == ["/about"] and page.scripts == ["/app.js"]
    assert [(action, method, [f.name for f in found]) for action, method, found in page.forms] == [
        ("/subscribe", "POST", ["email"])
    ]
    script = (
        "fetch(`${API}/api/todos/${todo.id}`, {method: 'PATCH', body: JSON.stringify({ done: true, title })})"
    )
    (call,) = script_endpoints(script)
    assert (call.method, call.path, fields(call)) == (
        "PATCH",
        "/api/todos/{id}",
        {("id", "path"), ("done", "json"), ("title", "json")},
    )
    source = Endpoint(
        method="GET",
        path="/api/books/{book_id}",
        fields=[Field(name="book_id", location="path")],
        found_by=["source"],
        handler=Handler(path="backend/app.py", line=3, end_line=5),
    )
    literal = Endpoint(
        method="GET",
        path="/api/books/search",
        found_by=["source"],
        handler=Handler(path="backend/app.py", line=7, end_line=9),
    )
    crawled = Endpoint(method="GET", path="/api/books/7", found_by=["crawl"])
    merged = merge(
        attach(
            [
                source,
                literal,
                crawled,
                Endpoint(method="GET", path="/api/books/search", found_by=["requirements"]),
            ]
        )
    )
    assert [(e.path, e.found_by) for e in merged] == [
        ("/api/books/search", ["source", "requirements"]),
        ("/api/books/{book_id}", ["source", "crawl"]),
    ]
    assert merged[1].fields[0].example == "7"


def test_markers_count_only_in_executable_contexts() -> None:
    mark = "xssmarker"
    assert executable_context("<p><xssmarker></p>", mark)
    assert executable_context("<img src=x xssmarker=1>", mark)
    assert executable_context('<div onclick="xssmarker()">', mark)
    assert executable_context('<a href="javascript:xssmarker()">', mark)
    assert executable_context("<p>&lt;xssmarker&gt;</p>", mark) is None
    assert executable_context('<input value="&quot; xssmarker=&quot;1">', mark) is None
    assert executable_context('<script>var q = "xssmarker";</script>', mark) is None


class Answer:
    def __init__(self, status: int, text: str) -> None:
        self.status, self.text, self.elapsed_s = status, text, 0.0

    def header(self, name: str) -> str | None:
        return None

    def header_list(self, name: str) -> list[str]:
        return []


def test_an_echoed_input_is_not_a_difference_and_expectations_judge_answers() -> None:
    true, false = "1 OR 1=1", "1 OR 1=2"
    assert not similar(Answer(200, json.dumps({"q": true})), Answer(200, json.dumps({"q": false})))
    assert similar(Answer(200, json.dumps({"q": true})), Answer(200, json.dumps({"q": false})), [true, false])
    rows = Answer(200, '[{"id": 1}, {"id": 2}, {"id": 3}]')
    assert holds(Differs(baseline=2, true=0, false=1, strip=[true, false]), [rows, Answer(200, "[]"), rows])
    assert not holds(Differs(baseline=2, true=0, false=1), [rows, rows, rows])
    assert holds(
        Contains(exchange=1, text="root:x:0:0", control=0),
        [Answer(200, "ok"), Answer(200, "root:x:0:0:root")],
    )
    assert not holds(
        Contains(exchange=1, text="x", control=0), [Answer(200, "x")]
    )  # an exchange that is not there


def test_sessions_signed_with_a_guessable_key_and_serialized_values() -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    claims = base64.urlsafe_b64encode(b'{"sub":"a"}').rstrip(b"=").decode()
    signature = (
        base64.urlsafe_b64encode(hmac.new(b"secret", f"{header}.{claims}".encode(), hashlib.sha256).digest())
        .rstrip(b"=")
        .decode()
    )
    assert signing_key(f"{header}.{claims}.{signature}") == ("jwt", "secret")
    assert signing_key(f"{header}.{claims}.{signature[:-2]}xx") is None
    assert serialized_kind(base64.b64encode(pickle_sleep(0)).decode()) == "pickle"
    assert serialized_kind(base64.b64encode(b'{"theme": "dark"}').decode()) == "base64-json"
    assert serialized_kind("plain-value") is None


def test_an_attack_fills_every_field_and_puts_the_payload_in_its_place() -> None:
    endpoint = Endpoint(method="POST", path="/api/users/{user_id}/notes", fields=[
        Field(name="user_id", location="path", type="integer"), Field(name="email", location="json"),
        Field(name="count", location="json", type="integer"), Field(name="q", location="query"), Field(name="theme", location="cookie"),
    ])  # fmt: skip
    attack = build(
        endpoint,
        {("q", "query"): "' OR 1=1"},
        headers={"Authorization": "Bearer t"},
        cookies={"session": "s"},
    )
    assert attack.path == "/api/users/1/notes?q=%27+OR+1%3D1"
    assert json.loads(attack.body or "") == {"email": "assay@example.com", "count": 1}
    assert (
        attack.headers["Cookie"] == "session=s; theme=assay"
        and attack.headers["Content-Type"] == "application/json"
    )


def test_a_field_the_session_sends_keeps_its_value_and_a_payload_replaces_it_whatever_its_case() -> None:
    """FastAPI declares `authorization` as a header field: an attack that added its own beside the session's
    `Authorization` sent both, the app read the session's, and the "attack" answered as the user did."""
    endpoint = Endpoint(method="GET", path="/api/notes/{note_id}", fields=[
        Field(name="note_id", location="path", type="integer"), Field(name="authorization", location="header"),
        Field(name="session", location="cookie"),
    ])  # fmt: skip
    headers, cookies = {"Authorization": "Bearer t", "X-Other": "o"}, {"session": "s"}
    plain = build(endpoint, headers=headers, cookies=cookies)
    assert plain.headers == {"X-Other": "o", "authorization": "Bearer t", "Cookie": "session=s"}
    payload = "Bearer t' AND '1'='1"
    attacked = build(endpoint, {("authorization", "header"): payload}, headers=headers, cookies=cookies)
    assert [v for name, v in attacked.headers.items() if name.lower() == "authorization"] == [payload]
    cookie = build(endpoint, {("session", "cookie"): "s'"}, headers=headers, cookies=cookies)
    assert cookie.headers["Cookie"] == "session=s'"
    # what a check puts its payload after: the session's own value, else a plausible one
    assert ordinary_value(endpoint.fields[1], headers, cookies) == "Bearer t"
    assert ordinary_value(endpoint.fields[2], headers, cookies) == "s"
    assert (
        ordinary_value(endpoint.fields[1]) == "assay" and ordinary_value(endpoint.fields[0], headers) == "1"
    )


def test_a_dynamic_finding_on_its_handler_joins_the_static_finding_of_its_sink_in_one_issue() -> None:
    handler = Handler(path="backend/app.py", line=33, end_line=42, function="search_books")
    endpoint = Endpoint(
        method="GET", path="/api/books/search", fields=[Field(name="q", location="query")], handler=handler
    )
    dynamic = attack_finding(
        tool="sqli", rule_id="sqli-error", severity="critical", message="m", cwe="CWE-89", endpoint=endpoint,
        anchor="query:q", proof=Proof(exchanges=[], evidence="e", why="w"), expectation=None,
    )  # fmt: skip
    static = Finding(
        tool="bandit",
        rule_id="B608",
        severity="medium",
        message="SQL built from strings",
        path="backend/app.py",
        line=37,
        cwe="CWE-89",
    )
    elsewhere = Finding(
        tool="bandit",
        rule_id="B608",
        severity="medium",
        message="m",
        path="backend/app.py",
        line=60,
        cwe="CWE-89",
    )
    keys = group_keys([dynamic, static, elsewhere])
    assert keys[0] == keys[1] != keys[2]
    unproven = at_most_low_without_proof(attack_finding(
        tool="sqli", rule_id="sqli-error", severity="critical", message="m", cwe="CWE-89", endpoint=endpoint,
        anchor="query:q", proof=None, expectation=None,
    ))  # fmt: skip
    assert unproven.severity == "low"  # at most low without proof
    assert at_most_low_without_proof(dynamic) == dynamic
    assert dynamic.fingerprint == unproven.fingerprint and "127.0.0.1" not in (dynamic.path or "")
