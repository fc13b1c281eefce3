"""Proof and findings of the active checks: the exchanges that show a flaw, the excerpt that proves it, why it does,
and a finding placed on its handler's `file:line` (so the issue groups join it with static findings there).

Severity follows impact; a finding without proof is at most `low` (unproven.py). Fingerprints hold the check, its rule, the
target, method and route template, and the insertion point: never a host, port or payload of one run.
"""

from __future__ import annotations

from typing import Any

import msgspec

from services.analyzers.dynamic.attacker import Sent
from services.analyzers.dynamic.expectations import Expectation
from services.analyzers.running_app.surface.model import Endpoint, Handler
from shared.results.findings import Exchange, Finding, Proof, Severity, fingerprint

EXCERPT_CHARS = 600
PROOF_HEADERS = ("content-type", "location", "set-cookie", "retry-after", "access-control-allow-origin")


def excerpt(text: str, evidence: str = "") -> str:
    """Up to EXCERPT_CHARS of `text`, centred on the first `evidence` when it occurs."""
    at = text.find(evidence) if evidence else -1
    if at < 0:
        return text[:EXCERPT_CHARS]
    start = max(0, at - EXCERPT_CHARS // 3)
    return text[start : start + EXCERPT_CHARS]


def exchange(sent: Sent, evidence: str = "") -> Exchange:
    """The stored form of one exchange, relative to its target."""
    answer = sent.answer
    return Exchange(
        method=sent.attack.method,
        path=sent.attack.path,
        target=sent.attack.target,
        headers=dict(sent.attack.headers),
        body=sent.attack.body,
        status=answer.status,
        response_headers={name: value for name, value in answer.headers if name in PROOF_HEADERS},
        response_excerpt=excerpt(sent.text, evidence),
        elapsed_s=round(sent.elapsed_s, 3),
    )


def make_proof(sents: list[Sent], evidence: str, why: str) -> Proof:
    return Proof(exchanges=[exchange(sent, evidence) for sent in sents], evidence=evidence, why=why)


def place(endpoint: Endpoint) -> str:
    """`backend:GET /api/notes/{}`: a route, whatever the run's host and port."""
    return f"{endpoint.target}:{endpoint.method} {endpoint.path}"


def attack_finding(
    *,
    tool: str,
    rule_id: str,
    severity: Severity,
    message: str,
    cwe: str,
    endpoint: Endpoint,
    anchor: str,
    proof: Proof | None,
    expectation: Expectation | None,
    handler: Handler | None = None,
    extra: dict[str, Any] | None = None,
) -> Finding:
    """A finding of an active check. On its handler's file and lines when the route map knows them (else on the
    route, `backend:/api/notes/{id}`); `low` at most without proof (the analyzer sees to it: unproven.py)."""
    handler = handler or endpoint.handler
    route = place(endpoint)
    details: dict[str, Any] = {"endpoint": f"{endpoint.method} {endpoint.path}", "target": endpoint.target}
    if handler is not None:
        details["handler"] = f"{handler.path}:{handler.line}"
    if expectation is not None:
        details["replay"] = msgspec.to_builtins(expectation)
    details.update(extra or {})
    return Finding(
        tool=tool,
        rule_id=rule_id,
        severity=severity,
        message=message,
        path=handler.path if handler else f"{endpoint.target}:{endpoint.path}",
        line=handler.line if handler else None,
        end_line=handler.end_line if handler else None,
        category="security",
        cwe=cwe,
        fingerprint=fingerprint(tool, rule_id, route, anchor),
        extra=details,
        proof=proof,
    )
