"""Insecure direct object references (CWE-639): user B reads, changes or deletes an object user A created, by its
id. User A creates an object through a collection route (`POST /notes`) with a marker in its text, finds its id in
the answer, and reads it back through the item route (`GET /notes/{id}`). Only when an anonymous caller may not read
it (the object is not public) does user B's access count: B's read shows A's marker, B's change shows up in A's
read, or B's delete leaves A with nothing. A negative answer counts only when A still reads the object as written:
the run's other checks act as user A at the same time and may write it, so an object changed under the check is
replaced by a new one, and a collection no object of which stayed unchanged is reported as not judged (the tool
run `partial`), as is a run without two users although the app has sign-up routes."""

from __future__ import annotations

import json
import secrets
from typing import Any

import msgspec

from services.analyzers.dynamic.attack_tool import AttackTool, attackable
from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import build
from services.analyzers.dynamic.expectations import Accepted, Contains, Expectation
from services.analyzers.dynamic.proof import attack_finding, make_proof
from services.analyzers.dynamic.recon import Recon
from services.analyzers.dynamic.users import Session, is_login, is_register
from services.analyzers.running_app.surface.model import Endpoint, Location, normalize_template
from shared.results.findings import Finding

CWE = "CWE-639"
# objects one collection is tried on when each changed under the check (the other checks of a run act as user A on
# the ids they guess, `1` first, concurrently with this one)
ATTEMPTS = 3
OK = range(200, 300)
WHY_READ = "user B, who did not create it, read user A's object by its id (the answer holds the text only A wrote), which an anonymous caller may not: the app checks that a caller is logged in, not that the object is theirs"
WHY_WRITE = "user B changed user A's object by its id, and A's own read shows B's text: the app does not check whose object it changes"
WHY_DELETE = "user B deleted user A's object by its id, and A can no longer read it: the app does not check whose object it deletes"


def object_id(sent: Sent) -> str | None:
    """The id of the object an answer created: an `id`-like key of its JSON (or its `data`), else its Location's
    last segment."""
    try:
        document = json.loads(sent.text)
    except ValueError:
        document = None
    for node in (document, document.get("data") if isinstance(document, dict) else None):
        if isinstance(node, dict):
            for key in ("id", "_id", "uuid", "pk", *[k for k in node if str(k).endswith(("_id", "Id"))]):
                value = node.get(key)
                if isinstance(value, (int, str)) and str(value):
                    return str(value)
    location = sent.answer.header("location")
    return location.rstrip("/").rsplit("/", 1)[-1] if location else None


def item_routes(collection: Endpoint, endpoints: list[Endpoint]) -> dict[str, Endpoint]:
    """method → the item route under a collection (`/notes` → `/notes/{id}`) with exactly one parameter."""
    stem = normalize_template(collection.path)
    return {
        e.method: e
        for e in endpoints
        if e.target == collection.target
        and normalize_template(e.path) == f"{stem}/{{}}"
        and len(e.located("path")) == 1
    }


def _as(session: Session | None, endpoint: Endpoint, values: dict[tuple[str, Location], str]) -> Any:
    return build(
        endpoint,
        values,
        headers=session.headers if session else None,
        cookies=session.cookies if session else None,
    )


class Attempt(msgspec.Struct, kw_only=True):
    """What one try on one object showed: the findings it proved, and why it could not judge when the object
    changed under it (another check of the run, acting as user A on the same id, wrote it between the reads)."""

    findings: list[Finding] = []
    disturbed: str | None = None
    readable: bool = True  # A's own read showed what A wrote


class Idor(AttackTool):
    name = "idor"
    cwe = CWE

    async def attack(
        self, recon: Recon, attacker: Attacker, findings: list[Finding], metrics: dict[str, Any]
    ) -> str | None:
        if len(recon.sessions) < 2:
            metrics["skipped"] = "needs two users (options.surface.users, or sign-up and log-in routes)"
            if recon.auth.get("from") is None:
                # neither accounts given nor a sign-up route: no two users to be, nothing to judge
                return None
            # accounts or a sign-up route, yet not two sessions (a sign-up or log-in refused or unanswered): the
            # check could not run, which is not "no flaw"
            failed = {k: v for k, v in recon.auth.items() if k.startswith("register_")}
            return (
                f"needs two users: the {recon.auth['from']} accounts gave {len(recon.sessions)} session(s)"
                f" (sign-up {recon.auth.get('register')}, log-in {recon.auth.get('login')}{f', {failed}' if failed else ''})"
            )
        a, b = recon.sessions[0], recon.sessions[1]
        endpoints = attackable(recon)
        tried = []
        unjudged: list[str] = []
        for collection in endpoints:
            if (
                collection.method != "POST"
                or is_login(collection)
                or is_register(collection)
                or not collection.body_kind
            ):
                continue
            items = item_routes(collection, endpoints)
            if "GET" not in items:
                continue
            tried.append(collection.path)
            found, disturbed = await self.try_collection(attacker, a, b, collection, items)
            findings += found
            if disturbed:
                unjudged.append(f"{collection.path}: {disturbed}")
        metrics["collections"] = tried
        metrics["unjudged"] = unjudged
        return "; ".join(unjudged) or None

    async def try_collection(
        self, attacker: Attacker, a: Session, b: Session, collection: Endpoint, items: dict[str, Endpoint]
    ) -> tuple[list[Finding], str | None]:
        """The findings on one collection's objects, and why it could not be judged (None when it was): an object
        that changed under the check is tried again with a new one, up to ATTEMPTS times."""
        proven: dict[str, Finding] = {}
        disturbed: str | None = None
        for _ in range(ATTEMPTS):
            attempt = await self.try_object(attacker, a, b, collection, items)
            proven.update((f.fingerprint, f) for f in attempt.findings)
            if attempt.disturbed is None and attempt.readable:
                return list(proven.values()), None
            disturbed = attempt.disturbed or disturbed
        # an app whose reads never show what was written is not judged by this check, and that is no accident of load
        reason = f"{disturbed} on each of {ATTEMPTS} objects" if disturbed else None
        return list(proven.values()), reason

    async def try_object(
        self, attacker: Attacker, a: Session, b: Session, collection: Endpoint, items: dict[str, Endpoint]
    ) -> Attempt:
        mark = "idor" + secrets.token_hex(5)
        text_fields: dict[tuple[str, Location], str] = {
            (f.name, f.location): f"{mark} {f.name}"
            for f in collection.fields
            if f.location in ("json", "form") and f.type == "string"
        }
        if not text_fields:
            return Attempt()
        created = await attacker.send(_as(a, collection, text_fields))
        object_key = object_id(created)
        if created.status not in OK or object_key is None:
            return Attempt()
        read = items["GET"]
        at: dict[tuple[str, Location], str] = {(read.located("path")[0].name, "path"): object_key}

        async def intact() -> bool:
            """Whether A still reads the object as A wrote it (else a negative answer proves nothing)."""
            again = await attacker.send(_as(a, read, at))
            return again.status in OK and mark in again.text

        own = await attacker.send(_as(a, read, at))
        if own.status not in OK or mark not in own.text:
            return Attempt(readable=False)
        anonymous = await attacker.send(_as(None, read, at))
        if anonymous.status in OK and mark in anonymous.text:
            return Attempt()  # a public object: anyone may read it
        changed = f"user A's object at GET {read.path} changed while the check read it"
        findings: list[Finding] = []
        made = [*a.made_by, created, *b.made_by]
        theirs = await attacker.send(_as(b, read, at))
        if theirs.status in OK and mark in theirs.text:
            sents = [*made, theirs]
            findings.append(
                self.finding(
                    read,
                    "idor-read",
                    f"user B reads user A's object through GET {read.path} (HTTP {theirs.status}; anonymous HTTP {anonymous.status})",
                    sents,
                    mark,
                    WHY_READ,
                    Contains(exchange=len(sents) - 1, text=mark),
                )
            )
        elif not await intact():
            return Attempt(disturbed=changed)
        for method in ("PUT", "PATCH"):
            change = items.get(method)
            if change is None:
                continue
            other = "idorb" + secrets.token_hex(5)
            values: dict[tuple[str, Location], str] = {
                (f.name, f.location): f"{other} {f.name}"
                for f in change.fields
                if f.location in ("json", "form") and f.type == "string"
            } or {k: f"{other} {k[0]}" for k in text_fields}
            written = await attacker.send(_as(b, change, {**values, **at}))
            after = await attacker.send(_as(a, read, at))
            if written.status in OK and other in after.text:
                sents = [*made, written, after]
                findings.append(
                    self.finding(
                        change,
                        "idor-write",
                        f"user B changes user A's object through {method} {change.path} (HTTP {written.status})",
                        sents,
                        other,
                        WHY_WRITE,
                        Contains(exchange=len(sents) - 1, text=other),
                    )
                )
            elif mark not in after.text:  # neither A's text nor B's: someone else wrote it
                return Attempt(findings=findings, disturbed=changed)
            break
        delete = items.get("DELETE")
        if delete is not None:
            removed = await attacker.send(
                _as(b, delete, {(delete.located("path")[0].name, "path"): object_key})
            )
            after = await attacker.send(_as(a, read, at))
            if removed.status in OK and after.status in (404, 410):
                sents = [*made, removed, after]
                findings.append(
                    self.finding(
                        delete,
                        "idor-delete",
                        f"user B deletes user A's object through DELETE {delete.path} (HTTP {removed.status}; A then gets HTTP {after.status})",
                        sents,
                        f"HTTP {after.status}",
                        WHY_DELETE,
                        Accepted(exchanges=[len(sents) - 1], statuses=[404, 410]),
                    )
                )
            elif after.status in (404, 410):  # B was refused, yet the object is gone: someone else deleted it
                return Attempt(findings=findings, disturbed=changed)
        return Attempt(findings=findings)

    def finding(
        self,
        endpoint: Endpoint,
        rule: str,
        message: str,
        sents: list[Sent],
        evidence: str,
        why: str,
        expectation: Expectation,
    ) -> Finding:
        return attack_finding(
            tool=self.name,
            rule_id=rule,
            severity="high",
            message=message,
            cwe=CWE,
            endpoint=endpoint,
            anchor=rule,
            proof=make_proof(sents, evidence, why),
            expectation=expectation,
        )
