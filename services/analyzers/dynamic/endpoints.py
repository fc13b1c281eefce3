"""Endpoints: does the running backend answer what the app promises, as it promises? What the `works` verdict reads.

The promises come from the app's requirements.json when it lists endpoints (what the app was asked to do), else
from the OpenAPI document the app ships (`openapi.yaml`, `backend/openapi.json` …) or serves (`/openapi.json` …);
the tool's metrics say which (`source`, `document`). Each is called once, in order (promises.py): requirements.json's
endpoints with the body the file gives; an OpenAPI operation with a request built from its schema (path parameters,
the required query, header and cookie ones, a body from the document's example or a minimal valid instance), a
sign-up with an account of Assay's own and a log-in with it, and a parameter naming an object with one the app
itself named before (identifiers.py: the object a POST created, the first one a listing gave).

A call refused (401, 403) where the promise is not a refusal is made again as a user: the session an earlier sign-up
or log-in call gave, else the run's first user (users.py). Three answers are not held against the app: a refusal as
that user too (or with no user to act as); a 400, 404, 409 or 422 where a value was Assay's guess (the schema admits
it, the app's own rules need not: no such object, a link it cannot reach, a name taken); a 502 or 504 (what the app
depends on is out of the sandbox's reach). Such a call is `unverified`, counted apart from `passed` and `failed`:
an app none of whose calls could be judged is not said to work. This tool writes to the app, as a user following
the promises would.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Literal
from urllib.parse import quote, urlencode

import httpx
import msgspec

from services.analyzers.base.job import Job
from services.analyzers.base.tool import SkipTool
from services.analyzers.dynamic.attacker import Attacker, BudgetSpent, Sent
from services.analyzers.dynamic.attacks import Attack
from services.analyzers.dynamic.identifiers import Known
from services.analyzers.dynamic.promises import Promise, Source, kept, openapi_promises, requirement_promises
from services.analyzers.dynamic.recon import Recon, ReconCache
from services.analyzers.dynamic.users import (
    Account,
    Session,
    cookies_set,
    credential_values,
    is_login,
    is_register,
    new_account,
    token_in,
)
from services.analyzers.running_app.http_tool import HttpTool, Inspection, http_finding
from services.analyzers.running_app.requirements import REQUIREMENTS_FILE, Requirements, load_requirements
from services.analyzers.running_app.surface.documents import served_openapi, shipped_openapi
from shared.results.findings import Finding

MAX_ENDPOINTS = 100
REQUESTS_PER_CALL = 2  # anonymously, then as a user
REFUSED = (401, 403)
UPSTREAM = (502, 504)  # the app's own call to another service failed
INVALID = (400, 404, 409, 422)  # the app refused the values sent: no such object, invalid, taken
LOG_OUT = re.compile(r"log-?out|sign-?out", re.IGNORECASE)  # never called as a user: it would end the session
EXCERPT_CHARS = 200
TIMEOUT_SHARE = 0.8  # of the tool's timeout the calls may take, so the tool still ends with what it found

Outcome = Literal["passed", "failed", "unverified"]


class Declared(msgspec.Struct, frozen=True, kw_only=True):
    """The promises of one source, and where they were read (`requirements.json`, `openapi.yaml`, `GET
    /openapi.json`)."""

    source: Source
    document: str
    promises: list[Promise]


class Called(msgspec.Struct, frozen=True, kw_only=True):
    """One promise as it was called and judged (an entry of `metrics.endpoints.results`)."""

    method: str
    path: str  # as the source declares it
    called: str  # the path and query sent
    expected: list[str]
    actual_status: int | None
    outcome: Outcome
    as_user: bool = False
    note: str | None = None
    error: str | None = None
    excerpt: str | None = None  # the start of a failed call's answer


async def declared(
    job: Job, client: httpx.AsyncClient, backend: str, requirements: Requirements | None
) -> Declared:
    """The app's promises: requirements.json's endpoints, else its OpenAPI document's operations (shipped, then
    served by `backend`). SkipTool when it declares none."""
    if requirements is not None and requirements.endpoints:
        return Declared(
            source="requirements", document=REQUIREMENTS_FILE, promises=requirement_promises(requirements)
        )
    shipped = await _shipped(job)
    if shipped is not None:
        name, document = shipped
        return Declared(source="openapi", document=name, promises=openapi_promises(document))
    path, served, _ = await served_openapi(client, backend)
    if served is not None:
        return Declared(source="openapi", document=f"GET {path}", promises=openapi_promises(served))
    raise SkipTool(
        f"no endpoints declared: no {REQUIREMENTS_FILE} endpoints, no OpenAPI document shipped or served"
    )


async def _shipped(job: Job) -> tuple[str, dict[str, Any]] | None:
    if job.app_dir is None:
        return None
    found = await asyncio.to_thread(shipped_openapi, job.app_dir)
    return found[0] if found else None


class Caller:
    """Calls promises one after another, carrying what earlier calls gave: the objects the app named, the session a
    sign-up or log-in gave, the account Assay signed up with."""

    def __init__(self, attacker: Attacker, target: str, source: Source, fallback: Session | None) -> None:
        self.attacker = attacker
        self.target = target
        self.source = source
        self.fallback = fallback  # the run's first user, where no call of ours gave a session
        self.known = Known()
        self.session: Session | None = None
        self.account: Account | None = None

    def _path(self, promise: Promise) -> tuple[str, bool]:
        """The path and query with each parameter filled (an object the app named where one is known), and whether
        any value of the call is Assay's guess (neither named by the app nor given by the source)."""
        made_up = [p for p in promise.parameters if p.location in ("header", "cookie") and not p.given]
        path, guessed = promise.path, promise.invented_body or bool(made_up)
        for parameter in promise.located("path"):
            value = self.known.in_path(promise.path, parameter.name)
            guessed = guessed or value is None
            path = path.replace("{" + parameter.name + "}", quote(value or parameter.value, safe=""))
        query = []
        for parameter in promise.located("query"):
            value = self.known.in_query(promise.path, parameter.name)
            guessed = guessed or value is None
            query.append((parameter.name, value or parameter.value))
        if query:
            path += ("&" if "?" in path else "?") + urlencode(query)
        return path, guessed

    def _body(self, promise: Promise) -> Any:
        """The body to send: an OpenAPI sign-up takes a new account of Assay's, a log-in the account it signed up
        with (else the run's first user's); requirements.json's bodies are sent as the file gives them."""
        body, endpoint = promise.body, promise.endpoint
        if self.source != "openapi" or not isinstance(body, dict):
            return body
        account: Account | None
        if is_register(endpoint) and not is_login(endpoint):
            account = self.account = new_account("works")
        elif is_login(endpoint):
            account = self.account or (self.fallback.account if self.fallback else None)
        else:
            return body
        if account is None:
            return body
        _, values = credential_values(endpoint, account, "form" if promise.body_kind == "form" else "json")
        return {**body, **{name: value for (name, _), value in values.items() if name in body}}

    def _attack(self, promise: Promise, path: str, body: Any, session: Session | None) -> Attack:
        headers = {p.name: p.value for p in promise.located("header")}
        cookies = {p.name: p.value for p in promise.located("cookie")}
        if session is not None:
            headers.update(session.headers)
            cookies.update(session.cookies)
        if cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        encoded = None
        if body is not None and promise.body_kind == "form" and isinstance(body, dict):
            encoded = urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()})
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            encoded = json.dumps(body)
            headers["Content-Type"] = "application/json"
        return Attack(method=promise.method, target=self.target, path=path, headers=headers, body=encoded)

    def _remember(self, promise: Promise, sent: Sent) -> None:
        """What a kept promise gives later calls: the object it named, the session a sign-up or log-in opened."""
        self.known.remember(promise.method, promise.path, sent.text)
        endpoint = promise.endpoint
        if is_login(endpoint) or is_register(endpoint):
            cookies, token = cookies_set(sent), token_in(sent.text)
            if cookies or token:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                self.session = Session(name="works", account=self.account, cookies=cookies, headers=headers)

    async def call(self, promise: Promise) -> Called:
        """Call `promise` (again as a user when it is refused) and judge the answer."""
        path, guessed = self._path(promise)
        body = self._body(promise)
        sent = await self.attacker.send(self._attack(promise, path, body, None))
        as_user = False
        if sent.status in REFUSED and not kept(promise.expected, sent.status):
            session = self.session or self.fallback
            if session is not None and not LOG_OUT.search(promise.path):
                sent = await self.attacker.send(self._attack(promise, path, body, session))
                as_user = True
        outcome: Outcome = "failed"
        note = None
        if kept(promise.expected, sent.status):
            outcome = "passed"
            self._remember(promise, sent)
        elif sent.status in REFUSED:
            outcome = "unverified"
            note = (
                "refused as Assay's user too (it may need a role that user lacks)"
                if as_user
                else "refused without credentials, and Assay has no user to call it as"
            )
        elif sent.status in INVALID and guessed:
            outcome = "unverified"
            note = "refused a value Assay made up (the schema admits it; the app's own rules need not)"
        elif sent.status in UPSTREAM:
            outcome = "unverified"
            note = "the app could not reach what it depends on (its sandbox lets nothing out)"
        return Called(
            method=promise.method,
            path=promise.path,
            called=path,
            expected=promise.expected,
            actual_status=sent.status,
            outcome=outcome,
            as_user=as_user,
            note=note,
            error=sent.answer.error,
            excerpt=sent.text[:EXCERPT_CHARS] if outcome == "failed" and sent.text else None,
        )


def _mismatch(tool: str, recon: Recon, target: str, called: Called, source: Source) -> Finding:
    actual = (
        f"HTTP {called.actual_status}" if called.actual_status is not None else f"no answer ({called.error})"
    )
    return http_finding(
        tool,
        "endpoint-mismatch",
        "medium",
        f"{called.method} {called.path}: expected HTTP {' or '.join(called.expected)}, got {actual}",
        recon.sites.url(target, called.path),
        sites=recon.sites,
        anchor=f"{called.method} {called.path}",
        category="requirements",
        extra={
            "method": called.method,
            "expected": called.expected,
            "actual_status": called.actual_status,
            "error": called.error,
            "source": source,
        },
    )


class Endpoints(HttpTool):
    name = "endpoints"

    def __init__(self, recons: ReconCache) -> None:
        self.recons = recons

    async def inspect(self, job: Job, client: httpx.AsyncClient) -> Inspection:
        requirements = await load_requirements(
            job.app_dir
        )  # invalid: the tool fails with why, before any call
        recon = await self.recons.of(job)  # SkipTool(targets_unreachable: …) when nothing answers
        target = "backend" if "backend" in recon.sites.bases else next(iter(recon.sites.bases))
        promises = await declared(job, client, recon.sites.bases[target], requirements)
        attacker = Attacker(
            client,
            recon.sites,
            max_requests=REQUESTS_PER_CALL * MAX_ENDPOINTS,
            max_s=job.tool_timeout_s(self.name) * TIMEOUT_SHARE,
        )
        caller = Caller(attacker, target, promises.source, recon.sessions[0] if recon.sessions else None)
        results: list[Called] = []
        stopped_by = None
        try:
            for promise in promises.promises[:MAX_ENDPOINTS]:
                results.append(await caller.call(promise))
        except BudgetSpent as spent:
            stopped_by = str(spent)
        counts = {
            outcome: sum(1 for r in results if r.outcome == outcome)
            for outcome in ("passed", "failed", "unverified")
        }
        metrics = {
            "source": promises.source,
            "document": promises.document,
            "backend": recon.sites.bases[target],
            "total": counts["passed"] + counts["failed"],
            **counts,
            "declared": len(promises.promises),
            "stopped_by": stopped_by,
            "results": [msgspec.to_builtins(result) for result in results],
        }
        findings = [
            _mismatch(self.name, recon, target, r, promises.source) for r in results if r.outcome == "failed"
        ]
        return Inspection(
            findings=findings,
            metrics=metrics,
            targets=[recon.sites.bases[target]],
            exchanges=attacker.exchanges,
            partial=f"stopped after {len(results)} endpoints: {stopped_by}" if stopped_by else None,
        )
