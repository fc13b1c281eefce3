"""What every active check shares: the run's reconnaissance, a budget of requests and seconds, reaching each
endpoint as a user who may call it, and an inspection that keeps what was found when the budget runs out."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec

from services.analyzers.base.job import Job
from services.analyzers.dynamic.attacker import Attacker, BudgetSpent, Sent
from services.analyzers.dynamic.attacks import Attack, Point, build, ordinary_value, points
from services.analyzers.dynamic.expectations import Contains, Expectation
from services.analyzers.dynamic.proof import attack_finding, make_proof
from services.analyzers.dynamic.recon import Recon, ReconCache
from services.analyzers.dynamic.users import Session, is_login, is_register
from services.analyzers.running_app.http_tool import HttpTool, Inspection
from services.analyzers.running_app.surface.model import Endpoint, Field, Location
from shared.results.findings import Finding, Proof, Severity

MISSING = (404, 405)
DENIED = (401, 403)
AVOID = re.compile(r"log-?out|sign-?out", re.IGNORECASE)
ORDER = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}
# of the tool's timeout an attack may spend, so the inspection still ends with its findings
TIMEOUT_SHARE = 0.8


class Reach(msgspec.Struct, frozen=True, kw_only=True):
    """An endpoint as the check calls it: anonymously or as a user, and its answer to ordinary values."""

    endpoint: Endpoint
    session: Session | None
    baseline: Sent

    def value(self, point: Point) -> str:
        """The field's value in the baseline (`attacks.ordinary_value`): a payload is put after it."""
        session = self.session
        return (
            ordinary_value(point.field, session.headers, session.cookies)
            if session
            else ordinary_value(point.field)
        )

    def attack(
        self,
        values: dict[tuple[str, Location], str] | None = None,
        *,
        raw_path: str | None = None,
        timeout_s: float | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> Attack:
        """The endpoint's request with `values` in place, sent as the same user as the baseline."""
        session = self.session
        headers = {**(session.headers if session else {}), **(extra_headers or {})}
        attack = build(
            self.endpoint,
            values,
            headers=headers,
            cookies=session.cookies if session else None,
            raw_path=raw_path,
        )
        return msgspec.structs.replace(attack, timeout_s=timeout_s) if timeout_s else attack


def attackable(recon: Recon) -> list[Endpoint]:
    """The endpoints worth attacking, the API's first, reading before writing, deleting last; log-out never."""
    endpoints = [
        e for e in recon.surface.endpoints if e.target in recon.sites.bases and not AVOID.search(e.path)
    ]
    return sorted(endpoints, key=lambda e: (e.target != "backend", ORDER.get(e.method, 5), e.path))


async def reach(attacker: Attacker, recon: Recon, endpoint: Endpoint) -> Reach | None:
    """The endpoint's baseline, as the first user when it refuses anonymous callers; None when it is not there.

    A 404 of a route the source declares is its handler's answer to the plain values (no such record), not a
    missing route: the endpoint is attacked all the same."""
    missing = (405,) if endpoint.handler is not None else MISSING
    first = await attacker.send(build(endpoint))
    if first.status in DENIED and recon.sessions:
        session = recon.sessions[0]
        again = await attacker.send(build(endpoint, headers=session.headers, cookies=session.cookies))
        return (
            Reach(endpoint=endpoint, session=session, baseline=again) if again.status not in missing else None
        )
    if first.status is None or first.status in missing:
        return None
    return Reach(endpoint=endpoint, session=None, baseline=first)


class AttackTool(HttpTool):
    """Base of the active checks: subclasses implement `attack`, appending findings as they confirm them."""

    cwe = ""

    def __init__(self, recons: ReconCache) -> None:
        self.recons = recons

    async def attack(
        self, recon: Recon, attacker: Attacker, findings: list[Finding], metrics: dict[str, Any]
    ) -> str | None:
        """Attack the app, appending each confirmed finding; return why part of the work could not be judged (the
        tool run is then `partial` with that reason), None when all of it was."""
        raise NotImplementedError

    async def insertion_points(
        self, recon: Recon, attacker: Attacker, locations: tuple[Location, ...], *, skip_auth: bool = True
    ) -> AsyncIterator[tuple[Reach, Point]]:
        """Each insertion point of the given locations on every endpoint that answers (sign-up and log-in routes
        left to the checks that are about them)."""
        for endpoint in attackable(recon):
            chosen = points(endpoint, locations)
            if not chosen or skip_auth and (is_login(endpoint) or is_register(endpoint)):
                continue
            reached = await reach(attacker, recon, endpoint)
            if reached is None:
                continue
            for point in chosen:
                yield reached, point

    async def inspect(self, job: Job, client: httpx.AsyncClient) -> Inspection:
        recon = await self.recons.of(job)
        attacker = Attacker(
            client,
            recon.sites,
            max_requests=job.settings.attack_max_requests,
            max_s=min(job.settings.attack_max_s, job.tool_timeout_s(self.name) * TIMEOUT_SHARE),
            task_budget=recon.budget,
        )
        findings: list[Finding] = []
        metrics: dict[str, Any] = {}
        unjudged: str | None = None
        try:
            unjudged = await self.attack(recon, attacker, findings, metrics)
            metrics["stopped_by"] = None
        except BudgetSpent as spent:  # what it confirmed stands; what it never tried is said
            metrics["stopped_by"] = str(spent)
            unjudged = (
                f"stopped before it tried every insertion point: {spent} (ASSAY_ATTACK_MAX_REQUESTS, "
                "ASSAY_ATTACK_MAX_S, ASSAY_ATTACK_TASK_MAX_REQUESTS)"
            )
        metrics["requests"] = attacker.sent
        return Inspection(
            findings=findings,
            metrics=metrics,
            targets=list(recon.sites.bases.values()),
            exchanges=attacker.exchanges,
            partial=unjudged,
        )


class Hit(msgspec.Struct, frozen=True, kw_only=True):
    """The first payload of a list whose answer shows the evidence, and that evidence."""

    sent: Sent
    payload: str
    evidence: str


async def first_hit(
    attacker: Attacker,
    reached: Reach,
    point: Point,
    payloads: list[str],
    evidence_of: Callable[[Sent], str | None],
    *,
    in_path: bool = False,
) -> Hit | None:
    """Send each payload in the insertion point (or as the whole path) until an answer shows evidence the
    baseline does not."""
    if evidence_of(reached.baseline):
        return None
    key = (point.field.name, point.field.location)
    for payload in payloads:
        sent = await attacker.send(
            reached.attack(None if in_path else {key: payload}, raw_path=payload if in_path else None)
        )
        evidence = evidence_of(sent)
        if evidence:
            return Hit(sent=sent, payload=payload, evidence=evidence)
    return None


def not_found_page(recon: Recon) -> Endpoint:
    """A path the app does not route: its not-found page is an insertion point too (it often echoes the path). Its
    handler is the app's not-found handler when the source has one."""
    target = "backend" if "backend" in recon.sites.bases else next(iter(recon.sites.bases))
    known = next(
        (e for e in recon.surface.on(target) if e.method == "GET" and e.path == "/{path}" and e.handler), None
    )
    return known or Endpoint(
        method="GET", path="/{path}", target=target, fields=[Field(name="path", location="path")]
    )


async def reach_not_found(attacker: Attacker, recon: Recon) -> tuple[Reach, Point]:
    endpoint = not_found_page(recon)
    baseline = await attacker.send(build(endpoint, raw_path=f"/assay-{secrets.token_hex(4)}"))
    return Reach(endpoint=endpoint, session=None, baseline=baseline), Point(
        endpoint=endpoint, field=endpoint.fields[0]
    )


def anchor(point: Point) -> str:
    """A point's name in fingerprints: its location and field."""
    return f"{point.field.location}:{point.field.name}"


ALL_LOCATIONS: tuple[Location, ...] = ("query", "path", "form", "json", "cookie", "header")


class PointCheck(AttackTool):
    """An active check that tries each insertion point on its own (`probe`): every point of `locations`, and the
    not-found page first when `not_found_page`."""

    locations: tuple[Location, ...] = ALL_LOCATIONS
    not_found_page = False
    skip_auth = True  # sign-up and log-in routes are left to the checks about them

    async def probe(
        self, attacker: Attacker, reached: Reach, point: Point, *, in_path: bool = False
    ) -> Finding | None:
        raise NotImplementedError

    async def attack(
        self, recon: Recon, attacker: Attacker, findings: list[Finding], metrics: dict[str, Any]
    ) -> None:
        if self.not_found_page:
            reached, point = await reach_not_found(attacker, recon)
            found = await self.probe(attacker, reached, point, in_path=True)
            if found is not None:
                findings.append(found)
        tested = 0
        async for reached, point in self.insertion_points(
            recon, attacker, self.locations, skip_auth=self.skip_auth
        ):
            tested += 1
            found = await self.probe(attacker, reached, point)
            if found is not None:
                findings.append(found)
        metrics["points_tested"] = tested

    async def computed_value(
        self,
        attacker: Attacker,
        reached: Reach,
        point: Point,
        payloads: list[str],
        expected: str,
        *,
        rule_id: str,
        flaw: str,
        verb: str,
        why: str,
    ) -> Finding | None:
        """A critical finding when an answer to one of `payloads` holds `expected`, a value that only running the
        input computes (no payload contains it): the first such answer beside the baseline is the proof."""

        def evidence(sent: Sent) -> str | None:
            return expected if expected in sent.text else None

        hit = await first_hit(attacker, reached, point, payloads, evidence)
        if hit is None:
            return None
        return self.point_finding(
            reached,
            point,
            rule_id=rule_id,
            severity="critical",
            message=f"{flaw} in the {point.label}: {hit.payload!r} {verb} {expected}",
            proof=make_proof([reached.baseline, hit.sent], expected, why),
            expectation=Contains(exchange=1, text=expected, control=0),
            payload=hit.payload,
        )

    def point_finding(
        self,
        reached: Reach,
        point: Point,
        *,
        rule_id: str,
        severity: Severity,
        message: str,
        proof: Proof,
        expectation: Expectation,
        payload: str,
        in_path: bool = False,
    ) -> Finding:
        """A finding of one insertion point (or of the not-found page, `in_path`)."""
        return attack_finding(
            tool=self.name,
            rule_id=rule_id,
            severity=severity,
            message=message,
            cwe=self.cwe,
            endpoint=reached.endpoint,
            anchor="not-found-page" if in_path else anchor(point),
            proof=proof,
            expectation=expectation,
            extra={"parameter": point.field.name, "location": point.field.location, "payload": payload},
        )
