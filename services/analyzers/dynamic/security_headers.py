"""Security headers of each target's answer to GET, and a 0-100 score.

Score weights (a header that is present but weak earns half its weight; a header that cannot apply, HSTS over
plain HTTP, is left out and the score is scaled to the rest):

    Content-Security-Policy 25, Strict-Transport-Security 20, X-Content-Type-Options 15,
    framing protection (CSP frame-ancestors or X-Frame-Options) 15, Referrer-Policy 15, Permissions-Policy 10.

The service-level score is the lowest score of any target: an app is as exposed as its weakest face.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlparse

import httpx
import msgspec

from services.analyzers.base.job import Job
from services.analyzers.running_app.client import Fetched
from services.analyzers.running_app.http_tool import HttpTool, Inspection, http_finding
from services.analyzers.running_app.targets import Sites, job_sites, reachable_targets
from shared.results.findings import Finding, Severity

WEIGHTS = {
    "content-security-policy": 25,
    "strict-transport-security": 20,
    "x-content-type-options": 15,
    "frame-protection": 15,
    "referrer-policy": 15,
    "permissions-policy": 10,
}
HSTS_MIN_AGE_S = 180 * 24 * 3600  # below half a year a browser forgets too soon to matter
WEAK_REFERRER_POLICIES = {"unsafe-url", "no-referrer-when-downgrade"}

State = Literal["ok", "weak", "missing", "not-applicable"]


class HeaderAssessment(msgspec.Struct, frozen=True):
    """One header's state and, when it is not ok, the finding's rule, severity, message and CWE."""

    state: State
    rule_id: str = ""
    severity: Severity = "low"
    message: str = ""
    cwe: str | None = None


CWE_BY_HEADER = {
    "content-security-policy": "CWE-693",
    "strict-transport-security": "CWE-319",
    "x-content-type-options": "CWE-693",
    "x-frame-options": "CWE-1021",
    "referrer-policy": "CWE-200",
    "permissions-policy": "CWE-693",
}


def flagged(
    state: Literal["missing", "weak"], header: str, severity: Severity, message: str
) -> HeaderAssessment:
    """A header that is `missing` or `weak`: rule id `<state>-<header>`, and the header's CWE."""
    return HeaderAssessment(state, f"{state}-{header}", severity, message, CWE_BY_HEADER[header])


def directives(policy: str) -> dict[str, str]:
    """CSP directives by name (lower-cased) → their source list."""
    parsed: dict[str, str] = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            parsed.setdefault(name.lower(), value.strip())
    return parsed


def content_security_policy(response: Fetched) -> HeaderAssessment:
    policy = response.header("content-security-policy")
    if policy is None:
        return flagged(
            "missing",
            "content-security-policy",
            "medium",
            "No Content-Security-Policy: injected scripts run unhindered",
        )
    parsed = directives(policy)
    scripts = parsed.get("script-src", parsed.get("default-src"))
    if scripts is None:
        return flagged(
            "weak",
            "content-security-policy",
            "low",
            "Content-Security-Policy restricts neither script-src nor default-src",
        )
    loose = [token for token in ("'unsafe-inline'", "'unsafe-eval'", "*") if token in scripts.split()]
    if loose:
        return flagged(
            "weak",
            "content-security-policy",
            "low",
            f"Content-Security-Policy allows {', '.join(loose)} for scripts",
        )
    return HeaderAssessment("ok")


def strict_transport_security(response: Fetched) -> HeaderAssessment:
    if urlparse(response.url).scheme != "https":
        return HeaderAssessment(
            "not-applicable",
            "strict-transport-security-needs-https",
            "info",
            "Served over plain HTTP: Strict-Transport-Security cannot apply and traffic is unencrypted",
            "CWE-319",
        )
    value = response.header("strict-transport-security")
    if value is None:
        return flagged(
            "missing",
            "strict-transport-security",
            "medium",
            "No Strict-Transport-Security: the first visit can be downgraded to HTTP",
        )
    match = re.search(r"max-age\s*=\s*\"?(\d+)", value, re.IGNORECASE)
    if match is None or int(match.group(1)) < HSTS_MIN_AGE_S:
        return flagged(
            "weak",
            "strict-transport-security",
            "low",
            f"Strict-Transport-Security max-age is below {HSTS_MIN_AGE_S} s: {value}",
        )
    return HeaderAssessment("ok")


def content_type_options(response: Fetched) -> HeaderAssessment:
    value = response.header("x-content-type-options")
    if value is None:
        return flagged(
            "missing",
            "x-content-type-options",
            "low",
            "No X-Content-Type-Options: nosniff; browsers may sniff responses into scripts",
        )
    if value.strip().lower() != "nosniff":
        return flagged(
            "weak", "x-content-type-options", "low", f"X-Content-Type-Options is '{value}', not 'nosniff'"
        )
    return HeaderAssessment("ok")


def frame_protection(response: Fetched) -> HeaderAssessment:
    if "frame-ancestors" in directives(response.header("content-security-policy") or ""):
        return HeaderAssessment("ok")
    value = response.header("x-frame-options")
    if value is None:
        return flagged(
            "missing",
            "x-frame-options",
            "medium",
            "Neither X-Frame-Options nor CSP frame-ancestors: the page can be framed (clickjacking)",
        )
    if value.strip().upper() not in ("DENY", "SAMEORIGIN"):
        return flagged(
            "weak", "x-frame-options", "low", f"X-Frame-Options '{value}' is not DENY or SAMEORIGIN"
        )
    return HeaderAssessment("ok")


def referrer_policy(response: Fetched) -> HeaderAssessment:
    value = response.header("referrer-policy")
    if value is None:
        return flagged(
            "missing", "referrer-policy", "low", "No Referrer-Policy: full URLs may leak to other sites"
        )
    # Browsers apply the last policy they understand in a comma-separated list.
    policies = [token.strip().lower() for token in value.split(",") if token.strip()]
    if not policies or policies[-1] in WEAK_REFERRER_POLICIES:
        return flagged(
            "weak", "referrer-policy", "low", f"Referrer-Policy '{value}' sends full URLs to other sites"
        )
    return HeaderAssessment("ok")


def permissions_policy(response: Fetched) -> HeaderAssessment:
    if response.header("permissions-policy") is None:
        return flagged(
            "missing",
            "permissions-policy",
            "low",
            "No Permissions-Policy: camera, microphone, geolocation … are not restricted",
        )
    return HeaderAssessment("ok")


ASSESSMENTS = {
    "content-security-policy": content_security_policy,
    "strict-transport-security": strict_transport_security,
    "x-content-type-options": content_type_options,
    "frame-protection": frame_protection,
    "referrer-policy": referrer_policy,
    "permissions-policy": permissions_policy,
}


def score(assessments: dict[str, HeaderAssessment]) -> int:
    """0-100 by WEIGHTS: ok earns the weight, weak half of it, missing nothing; not-applicable is left out."""
    applicable = {name: v for name, v in assessments.items() if v.state != "not-applicable"}
    total = sum(WEIGHTS[name] for name in applicable)
    earned = sum(WEIGHTS[name] * {"ok": 1.0, "weak": 0.5}.get(v.state, 0.0) for name, v in applicable.items())
    return round(100 * earned / total) if total else 100


def disclosures(response: Fetched) -> list[tuple[str, str, str]]:
    """(rule id, header, message) for headers that tell an attacker what software and version runs."""
    found = []
    server = response.header("server")
    if server and re.search(r"\d", server):
        found.append(("server-version-disclosure", "server", f"Server header discloses versions: '{server}'"))
    powered = response.header("x-powered-by")
    if powered:
        found.append(
            ("x-powered-by-disclosure", "x-powered-by", f"X-Powered-By discloses the stack: '{powered}'")
        )
    return found


class SecurityHeaders(HttpTool):
    name = "security-headers"

    def findings_for(
        self, response: Fetched, assessments: dict[str, HeaderAssessment], sites: Sites
    ) -> list[Finding]:
        findings = [
            http_finding(
                self.name,
                v.rule_id,
                v.severity,
                v.message,
                response.url,
                sites=sites,
                anchor=header,
                cwe=v.cwe,
                extra={"header": header, "state": v.state},
            )
            for header, v in assessments.items()
            if v.rule_id
        ]
        findings += [
            http_finding(
                self.name,
                rule_id,
                "low",
                message,
                response.url,
                sites=sites,
                anchor=header,
                cwe="CWE-200",
                extra={"header": header, "value": response.header(header)},
            )
            for rule_id, header, message in disclosures(response)
        ]
        return findings

    async def inspect(self, job: Job, client: httpx.AsyncClient) -> Inspection:
        responses = await reachable_targets(job, client)
        sites = job_sites(job)
        findings: list[Finding] = []
        per_target: dict[str, object] = {}
        scores = []
        for response in responses:
            assessments = {header: judge(response) for header, judge in ASSESSMENTS.items()}
            findings += self.findings_for(response, assessments, sites)
            scores.append(score(assessments))
            per_target[response.url] = {
                "score": scores[-1],
                "headers": {header: v.state for header, v in assessments.items()},
            }
        metrics = {"score": min(scores), "weights": WEIGHTS, "targets": per_target}
        return Inspection(
            findings=findings, metrics=metrics, targets=[r.url for r in responses], exchanges=responses
        )
