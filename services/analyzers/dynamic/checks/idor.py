"""Insecure direct object references (CWE-639): user B reads, changes or deletes an object user A created, by its
id. User A creates an object through a collection route (`POST /notes`) with a marker in its text, finds its id in
the answer, and reads it back through the item route (`GET /notes/{id}`). Only when an anonymous caller may not read
it (the object is not public) does user B's access count: B's read shows A's marker, B's change shows up in A's
read, or B's delete leaves A with nothing."""

from __future__ import annotations

import json
import secrets
from typing import Any

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


class Idor(AttackTool):
    name = "idor"
    cwe = CWE

    async def attack(
        self, recon: Recon, attacker: Attacker, findings: list[Finding], metrics: dict[str, Any]
    ) -> None:
        if len(recon.sessions) < 2:
            metrics["skipped"] = "needs two users (options.surface.users, or sign-up and log-in routes)"
            return
        a, b = recon.sessions[0], recon.sessions[1]
        endpoints = attackable(recon)
        tried = []
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
            found = await self.try_collection(attacker, a, b, collection, items)
            findings += found
        metrics["collections"] = tried

    async def try_collection(
        self, attacker: Attacker, a: Session, b: Session, collection: Endpoint, items: dict[str, Endpoint]
    ) -> list[Finding]:
        mark = "idor" + secrets.token_hex(5)
        text_fields: dict[tuple[str, Location], str] = {
            (f.name, f.location): f"{mark} {f.name}"
            for f in collection.fields
            if f.location in ("json", "form") and f.type == "string"
        }
        if not text_fields:
            return []
        created = await attacker.send(_as(a, collection, text_fields))
        object_key = object_id(created)
        if created.status not in OK or object_key is None:
            return []
        read = items["GET"]
        at: dict[tuple[str, Location], str] = {(read.located("path")[0].name, "path"): object_key}
        own = await attacker.send(_as(a, read, at))
        if own.status not in OK or mark not in own.text:
            return []
        anonymous = await attacker.send(_as(None, read, at))
        if anonymous.status in OK and mark in anonymous.text:
            return []  # a public object: anyone may read it
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
            changed = await attacker.send(_as(b, change, {**values, **at}))
            after = await attacker.send(_as(a, read, at))
            if changed.status in OK and other in after.text:
                sents = [*made, changed, after]
                findings.append(
                    self.finding(
                        change,
                        "idor-write",
                        f"user B changes user A's object through {method} {change.path} (HTTP {changed.status})",
                        sents,
                        other,
                        WHY_WRITE,
                        Contains(exchange=len(sents) - 1, text=other),
                    )
                )
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
        return findings

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
