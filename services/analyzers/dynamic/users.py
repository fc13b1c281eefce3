"""Acting as users: the accounts a request's options name (`options.surface.users`), else two accounts Assay
registers itself where the app has sign-up and log-in routes, each logged in (cookies and bearer tokens both), so
that checks run anonymously and authenticated and access checks can try user B on user A's objects."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import msgspec

from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import build
from services.analyzers.running_app.surface.model import Endpoint, Field, Location, Surface

LOGIN = re.compile(r"(^|/)(log-?in|sign-?in|auth(enticate)?|token|sessions?)/?$", re.IGNORECASE)
REGISTER = re.compile(r"(^|/)(register|sign-?up|join|users|accounts|create-?account)/?$", re.IGNORECASE)
PASSWORD = re.compile(r"pass(word)?|pwd", re.IGNORECASE)
CONFIRM = re.compile(r"confirm|repeat|again|password2", re.IGNORECASE)
EMAIL = re.compile(r"e-?mail", re.IGNORECASE)
USER = re.compile(r"user|login|name|handle", re.IGNORECASE)
TOKEN_KEYS = (
    "access_token",
    "accesstoken",
    "token",
    "jwt",
    "id_token",
    "auth_token",
    "authtoken",
    "sessiontoken",
    "key",
)
ACCEPTED = range(200, 400)


class Account(msgspec.Struct, frozen=True, kw_only=True):
    username: str
    password: str
    email: str


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """One user as the app knows them: what to send to be them (a Cookie, an Authorization header), and the
    exchanges that made the session (a proof that needs the user starts with them)."""

    name: str  # `a`, `b`: the two users; `given` for accounts from the options
    account: Account | None = None
    cookies: dict[str, str] = {}
    headers: dict[str, str] = {}
    made_by: list[Sent] = []

    @property
    def valid(self) -> bool:
        return bool(self.cookies or self.headers)


def new_account(name: str) -> Account:
    tag = secrets.token_hex(3)
    return Account(
        username=f"assay_{name}_{tag}", password=f"Assay-{tag}-Pw1!", email=f"assay_{name}_{tag}@example.com"
    )


def is_login(endpoint: Endpoint) -> bool:
    return (
        endpoint.method == "POST"
        and LOGIN.search(endpoint.path) is not None
        and "register" not in endpoint.path
    )


def is_register(endpoint: Endpoint) -> bool:
    return (
        endpoint.method == "POST"
        and REGISTER.search(endpoint.path) is not None
        and (
            any(PASSWORD.search(f.name) for f in endpoint.fields)
            or "{" not in endpoint.path
            and not endpoint.fields
        )
    )


def auth_routes(surface: Surface) -> tuple[Endpoint | None, Endpoint | None]:
    """(register, login) endpoints of the API, the source's first."""
    ranked = sorted(surface.on("backend"), key=lambda e: "source" not in e.found_by)
    register = next((e for e in ranked if is_register(e) and not is_login(e)), None)
    login = next((e for e in ranked if is_login(e)), None)
    return register, login


def credential_values(
    endpoint: Endpoint, account: Account, location: Location
) -> tuple[Endpoint, dict[tuple[str, Location], str]]:
    """The endpoint with fields for an account (a username, email and password when it names none) and their
    values."""
    fields = [f for f in endpoint.fields if f.location in ("json", "form")]
    if not any(PASSWORD.search(f.name) for f in fields):
        fields = [
            Field(name="username", location=location),
            Field(name="email", location=location),
            Field(name="password", location=location),
        ]
        endpoint = msgspec.structs.replace(
            endpoint, fields=[*endpoint.located("path"), *endpoint.located("query"), *fields]
        )
    values: dict[tuple[str, Location], str] = {}
    for f in fields:
        if PASSWORD.search(f.name) or CONFIRM.search(f.name):
            values[(f.name, f.location)] = account.password
        elif EMAIL.search(f.name):
            values[(f.name, f.location)] = account.email
        elif USER.search(f.name):
            values[(f.name, f.location)] = account.username
    return endpoint, values


def token_in(text: str) -> str | None:
    """A bearer token in a JSON answer (`token`, `access_token`, … at most three levels down)."""
    try:
        document = json.loads(text)
    except ValueError:
        return None

    def search(node: Any, depth: int) -> str | None:
        if depth > 3:
            return None
        if isinstance(node, dict):
            for key, value in node.items():
                if str(key).lower() in TOKEN_KEYS and isinstance(value, str) and len(value) >= 8:
                    return value
            for value in node.values():
                found = search(value, depth + 1)
                if found:
                    return found
        return None

    return search(document, 0)


def cookies_set(sent: Sent) -> dict[str, str]:
    """Cookies an answer sets (name → value), a deleted one left out."""
    jar = {}
    for header in sent.answer.header_list("set-cookie"):
        pair = header.split(";", 1)[0]
        name, _, value = pair.partition("=")
        if name.strip() and value.strip() and "max-age=0" not in header.lower():
            jar[name.strip()] = value.strip()
    return jar


async def submit(attacker: Attacker, endpoint: Endpoint, account: Account) -> Sent:
    """Send an account to a sign-up or log-in route: as the route takes it, else JSON, then a form."""
    kinds: list[Location] = [endpoint.body_kind or "json"] if endpoint.body_kind else ["json", "form"]
    sent: Sent | None = None
    for kind in kinds:
        filled, values = credential_values(endpoint, account, kind)
        sent = await attacker.send(build(filled, values, body_kind=kind))
        if sent.status in ACCEPTED:
            return sent
    assert sent is not None
    return sent


async def log_in(
    attacker: Attacker, login: Endpoint | None, account: Account, name: str, before: list[Sent]
) -> Session:
    """A session for `account`: from the log-in route when there is one, else from what signing up gave."""
    made_by = list(before)
    cookies: dict[str, str] = {}
    token: str | None = None
    for sent in made_by:
        cookies.update(cookies_set(sent))
        token = token_in(sent.text) or token
    if login is not None:
        sent = await submit(attacker, login, account)
        made_by.append(sent)
        if sent.status in ACCEPTED:
            cookies.update(cookies_set(sent))
            token = token_in(sent.text) or token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Session(name=name, account=account, cookies=cookies, headers=headers, made_by=made_by)


async def sign_in(
    attacker: Attacker, surface: Surface, given: list[dict[str, str]]
) -> tuple[list[Session], dict[str, Any]]:
    """The sessions checks act as, and what was tried (for the surface's metrics)."""
    register, login = auth_routes(surface)
    tried: dict[str, Any] = {
        "register": f"POST {register.path}" if register else None,
        "login": f"POST {login.path}" if login else None,
    }
    sessions: list[Session] = []
    if given:
        for index, entry in enumerate(given[:2]):
            if entry.get("token"):
                sessions.append(
                    Session(name=f"given{index + 1}", headers={"Authorization": f"Bearer {entry['token']}"})
                )
            elif entry.get("username") and entry.get("password"):
                account = Account(
                    username=entry["username"],
                    password=entry["password"],
                    email=entry.get("email") or entry["username"],
                )
                sessions.append(await log_in(attacker, login, account, f"given{index + 1}", []))
        tried["from"] = "options"
    elif register is not None:
        for name in ("a", "b"):
            account = new_account(name)
            signed_up = await submit(attacker, register, account)
            if signed_up.status not in ACCEPTED:
                tried[f"register_{name}"] = signed_up.status
                continue
            sessions.append(await log_in(attacker, login, account, name, [signed_up]))
        tried["from"] = "registered"
    valid = [session for session in sessions if session.valid]
    tried["sessions"] = {s.name: {"cookies": sorted(s.cookies), "bearer": bool(s.headers)} for s in valid}
    return valid, tried
