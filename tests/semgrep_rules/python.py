# Cases for services/analyzers/static/rules/python.yml, checked by `semgrep --test` (tests/test_semgrep_rules.py):
# a `ruleid:` comment says the next line must be reported by that rule, an `ok:` comment that it must not be.
# ruff: noqa
# mypy: ignore-errors
import hashlib
import logging
import os
import pickle
import random
import sqlite3
import subprocess
from urllib.parse import urlparse

import jinja2
import requests
import jwt
import yaml
from aiohttp import web
from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from flask import Flask, make_response, redirect, render_template_string, request, send_file
from markupsafe import Markup, escape
from sqlalchemy import text
from werkzeug.security import generate_password_hash

app = Flask(__name__)
api = FastAPI()
log = logging.getLogger(__name__)


# ---------------------------------------------------------------- SQL
def search(connection: sqlite3.Connection, term: str):
    # ruleid: python-sql-string-formatting
    connection.execute(f"SELECT * FROM books WHERE title = '{term}'")
    # ruleid: python-sql-string-formatting
    connection.execute("SELECT * FROM books WHERE title = '%s'" % term)
    # ruleid: python-sql-string-formatting
    connection.executescript("DELETE FROM books WHERE id = " + term)
    # ruleid: python-sql-string-formatting
    query = "SELECT * FROM books WHERE author = '{}'".format(term)
    rows = connection.execute(query).fetchall()
    # ruleid: python-sql-string-formatting
    text(f"SELECT * FROM books WHERE id = {term}")
    # ok: python-sql-string-formatting
    connection.execute("SELECT * FROM books WHERE title = ?", (term,))
    # ok: python-sql-string-formatting
    log.info(f"searched for {term}")
    # ok: python-sql-string-formatting
    subprocess_runner.execute(f"ls {term}")
    # ok: python-sql-string-formatting
    connection.execute(f"SELECT COUNT(*) FROM books")
    return rows


# ---------------------------------------------------------------- template injection
@app.route("/card")
def card():
    name = request.args.get("name", "friend")
    # ruleid: python-template-injection
    return render_template_string(f"<p>Happy birthday, {name}!</p>")


@app.route("/card-safe")
def card_safe():
    name = request.args.get("name", "friend")
    # ok: python-template-injection
    return render_template_string("<p>Happy birthday, {{ name }}!</p>", name=name)


@api.get("/menu/{dish}")
async def menu(dish: str):
    # ruleid: python-template-injection
    page = jinja2.Template(f"<h1>{dish} is not on the menu</h1>").render()
    # ok: python-template-injection
    other = jinja2.Template("<h1>{{ dish }} is not on the menu</h1>").render(dish=dish)
    return page + other


# ---------------------------------------------------------------- code, command, deserialization
@app.get("/calc")
def calc():
    expression = request.args["expr"]
    # ruleid: python-code-injection
    value = eval(expression)
    # ok: python-code-injection
    constant = eval("1 + 2")
    return str(value + constant)


@app.post("/lookup")
def lookup():
    host = request.get_json()["host"]
    # ruleid: python-command-injection
    subprocess.run(f"getent hosts {host}", shell=True)
    # ruleid: python-command-injection
    os.system("ping -c1 " + host)
    # ok: python-command-injection
    subprocess.run(["getent", "hosts", host])
    # ok: python-command-injection
    os.system("uptime")
    return "ok"


@app.post("/restore")
def restore():
    # ruleid: python-unsafe-deserialization
    state = pickle.loads(request.cookies["state"].encode())
    # ruleid: python-unsafe-deserialization
    config = yaml.load(request.files["config"].read(), Loader=yaml.Loader)
    # ok: python-unsafe-deserialization
    settings = yaml.load(request.files["config"].read(), Loader=yaml.SafeLoader)
    with open("cache.pickle", "rb") as handle:
        # ok: python-unsafe-deserialization
        cached = pickle.load(handle)
    return str((state, config, settings, cached))


# ---------------------------------------------------------------- paths, URLs, redirects
@api.get("/reports/{document}")
def report(document: str):
    path = os.path.join("reports", document)
    # ruleid: python-path-traversal
    return FileResponse(path)


@api.get("/reports-checked/{document}")
def report_checked(document: str):
    path = os.path.realpath(os.path.join("reports", document))
    if not path.startswith("/srv/reports/"):
        return None
    # ok: python-path-traversal
    return FileResponse(path)


@api.get("/reports-safe/{document}")
def report_safe(document: str):
    path = os.path.join("reports", os.path.basename(document))
    # ok: python-path-traversal
    return FileResponse(path)


@app.get("/download")
def download():
    name = request.args["file"]
    full = os.path.realpath(os.path.join("/srv/files", os.path.basename(name)))
    # ok: python-path-traversal
    return send_file(full)


@app.get("/go")
def go():
    target = request.args.get("next", "/")
    # ruleid: python-open-redirect
    return redirect(target)


@app.get("/go-safe")
def go_safe():
    target = request.args.get("next", "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    # ok: python-open-redirect
    return redirect(target)


@api.post("/previews")
def preview(link: str):
    if urlparse(link).scheme not in ("http", "https"):
        return {}
    # ruleid: python-ssrf
    page = requests.get(link, timeout=3).text
    # ok: python-ssrf
    status = requests.get("https://status.example.org", timeout=3).status_code
    # ok: python-ssrf
    option = request.args.get("link")
    return {"page": page, "status": status, "option": option}


@api.post("/previews-safe")
def preview_safe(link: str):
    if not is_public(link):
        return {}
    # ok: python-ssrf
    return {"page": requests.get(link, timeout=3).text}


# ---------------------------------------------------------------- XSS
@app.post("/feedback")
def feedback():
    comment = request.form.get("comment", "")
    email = escape(request.form.get("email", ""))
    # ruleid: python-xss-html-from-request
    return f"<p>Thanks {email}! You wrote:</p><blockquote>{comment}</blockquote>"


@app.post("/feedback-safe")
def feedback_safe():
    comment = escape(request.form.get("comment", ""))
    # ok: python-xss-html-from-request
    return f"<p>You wrote:</p><blockquote>{comment}</blockquote>"


@app.get("/bio")
def bio():
    # ruleid: python-xss-html-from-request
    return make_response(Markup("<p>" + request.args["bio"] + "</p>"))


# ruleid: python-jinja-autoescape-off
environment = jinja2.Environment(loader=jinja2.FileSystemLoader("templates"), autoescape=False)
# ok: python-jinja-autoescape-off
safe_environment = jinja2.Environment(loader=jinja2.FileSystemLoader("templates"), autoescape=True)

BOOK = """<ul>{% for entry in entries %}
<!-- ruleid: python-template-safe-filter -->
<li>{{ entry.message | safe }}</li>
<!-- ok: python-template-safe-filter -->
<li>{{ entry.author }}</li>
{% endfor %}</ul>"""


# ---------------------------------------------------------------- authentication and sessions
def claims(token: str, key: str):
    # ruleid: python-jwt-not-verified
    unverified = jwt.decode(token, options={"verify_signature": False})
    # ok: python-jwt-not-verified
    verified = jwt.decode(token, key, algorithms=["HS256"])
    return unverified, verified


@app.post("/login")
def login():
    response = make_response("ok")
    # ruleid: python-cookie-without-flags
    response.set_cookie("session", "abc")
    # ok: python-cookie-without-flags
    response.set_cookie("session", "abc", httponly=True, secure=True, samesite="Lax")
    return response


# ruleid: python-session-cookie-insecure-config
app.config["SESSION_COOKIE_SECURE"] = False
# ok: python-session-cookie-insecure-config
app.config["SESSION_COOKIE_SECURE"] = True
# ruleid: python-csrf-protection-off
app.config["WTF_CSRF_ENABLED"] = False
# ok: python-csrf-protection-off
app.config["WTF_CSRF_ENABLED"] = True


def register(connection: sqlite3.Connection, form: dict):
    username = form["username"]
    password = form["password"]
    # ruleid: python-password-plaintext
    connection.execute("INSERT INTO users (username, password) VALUES (?, ?)", (username, password))
    # ok: python-password-plaintext
    connection.execute(
        "INSERT INTO users (username, password) VALUES (?, ?)", (username, generate_password_hash(password))
    )


def check_password(stored: str, password: str) -> bool:
    # ruleid: python-password-fast-hash
    return hashlib.md5(password.encode()).hexdigest() == stored


def file_digest(data: bytes) -> str:
    # ok: python-password-fast-hash
    return hashlib.sha256(data).hexdigest()


def seed(connection: sqlite3.Connection) -> None:
    # ruleid: python-seeded-default-credentials
    connection.execute("INSERT INTO users (username, password) VALUES ('admin', 'admin123')")
    # ruleid: python-seeded-default-credentials
    admin_hash = generate_password_hash("admin123")
    # ok: python-seeded-default-credentials
    first_hash = generate_password_hash(os.environ["ADMIN_PASSWORD"])


# ---------------------------------------------------------------- debug, secrets, randomness
# ruleid: python-hardcoded-secret
app.secret_key = "dev"
# ok: python-hardcoded-secret
app.secret_key = os.environ["SECRET_KEY"]
# ruleid: python-hardcoded-secret
SECRET_KEY = os.environ.get("SECRET_KEY", "change-me")
# ok: python-hardcoded-secret
TOKEN_HEADER = "X_AUTH"
# ok: python-hardcoded-secret
API_KEY_NAME = "API_KEY"
# ok: python-hardcoded-secret
PASSWORD_FIELD = "password"
# ruleid: python-hardcoded-secret
DB_PASSWORD = "hunter2"


def make_reset_token() -> str:
    # ruleid: python-insecure-random-token
    return "".join(random.choice("abcdef0123456789") for _ in range(32))


def roll_dice() -> int:
    # ok: python-insecure-random-token
    return random.randint(1, 6)


aio = web.Application()
if __name__ == "__main__":
    # ruleid: python-debug-mode
    app.run(host="127.0.0.1", port=5000, debug=True)
    # ok: python-debug-mode
    app.run(host="127.0.0.1", port=5000, debug=os.environ.get("FLASK_DEBUG") == "1")
    # ruleid: python-debug-mode
    web.run_app(web.Application(debug=True))
