"""Cookie flags: every Set-Cookie the app sends to a plain GET of its targets and of its promised GET endpoints.

Per cookie (once per target, however many pages set it): HttpOnly and SameSite always, Secure on https.
Only GET is sent, so this tool changes nothing in the app.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

import httpx
import msgspec

from services.analyzers.base.job import Job
from services.analyzers.running_app.client import fetch, join_url
from services.analyzers.running_app.http_tool import HttpTool, Inspection, Problem, http_finding
from services.analyzers.running_app.requirements import promised_get_paths
from services.analyzers.running_app.targets import Sites, backend_target, job_sites, reachable_targets
from shared.results.findings import Finding, Severity

MAX_ENDPOINTS = 20
# Names that usually carry a session or credential: script access to these is the classic XSS payoff.
SENSITIVE_NAME = re.compile(r"sess|token|auth|jwt|sid|login|remember|csrf|xsrf", re.IGNORECASE)


class Cookie(msgspec.Struct, frozen=True):
    name: str
    attributes: dict[str, str]  # lower-cased attribute name → value ("" for flags)


def parse_set_cookie(header: str) -> Cookie:
    """The cookie's name and attributes from one Set-Cookie header value."""
    first, *rest = header.split(";")
    name = first.split("=", 1)[0].strip()
    attributes = {}
    for part in rest:
        key, _, value = part.strip().partition("=")
        if key:
            attributes[key.strip().lower()] = value.strip()
    return Cookie(name, attributes)


def redact(header: str) -> str:
    """The Set-Cookie header with the cookie's value hidden: findings must not carry session tokens."""
    first, sep, rest = header.partition(";")
    name = first.split("=", 1)[0].strip()
    return f"{name}=<redacted>{sep}{rest}"


class Cookies(HttpTool):
    name = "cookies"

    def judge(self, cookie: Cookie, header: str, url: str, sites: Sites) -> list[Finding]:
        https = urlparse(url).scheme == "https"
        samesite = cookie.attributes.get("samesite", "").lower()
        secure = "secure" in cookie.attributes
        problems: list[Problem] = []
        if https and not secure:
            problems.append(
                Problem(
                    rule_id="cookie-missing-secure",
                    severity="medium",
                    message=f"Cookie '{cookie.name}' lacks Secure: it is also sent over plain HTTP",
                    cwe="CWE-614",
                )
            )
        if "httponly" not in cookie.attributes:
            severity: Severity = "medium" if SENSITIVE_NAME.search(cookie.name) else "low"
            problems.append(
                Problem(
                    rule_id="cookie-missing-httponly",
                    severity=severity,
                    message=f"Cookie '{cookie.name}' lacks HttpOnly: page scripts can read it",
                    cwe="CWE-1004",
                )
            )
        if "samesite" not in cookie.attributes:
            problems.append(
                Problem(
                    rule_id="cookie-missing-samesite",
                    severity="low",
                    message=f"Cookie '{cookie.name}' lacks SameSite: it rides along on cross-site requests",
                    cwe="CWE-1275",
                )
            )
        elif samesite == "none" and not secure:
            problems.append(
                Problem(
                    rule_id="cookie-samesite-none-without-secure",
                    severity="medium",
                    message=f"Cookie '{cookie.name}' is SameSite=None without Secure (browsers reject it)",
                    cwe="CWE-1275",
                )
            )
        return [
            http_finding(
                self.name,
                problem.rule_id,
                problem.severity,
                problem.message,
                url,
                sites=sites,
                anchor=cookie.name,
                cwe=problem.cwe,
                extra={"cookie": cookie.name, "set_cookie": redact(header)},
            )
            for problem in problems
        ]

    async def inspect(self, job: Job, client: httpx.AsyncClient) -> Inspection:
        targets = await reachable_targets(job, client)
        sites = job_sites(job)
        exchanges = list(targets)
        backend = backend_target([t.url for t in targets], job.app_env)
        for path in (await promised_get_paths(job.app_dir, job.task.id))[:MAX_ENDPOINTS]:
            exchanges.append(await fetch(client, "GET", join_url(backend, path)))
        findings: list[Finding] = []
        seen: dict[tuple[str, str], dict[str, object]] = {}  # (origin, cookie name) → what the metrics show
        for exchange in exchanges:
            origin = "{0.scheme}://{0.netloc}".format(urlparse(exchange.url))
            for header in exchange.header_list("set-cookie"):
                cookie = parse_set_cookie(header)
                if not cookie.name or (origin, cookie.name) in seen:
                    continue
                seen[(origin, cookie.name)] = {"url": exchange.url, "flags": sorted(cookie.attributes)}
                findings += self.judge(cookie, header, exchange.url, sites)
        metrics = {
            "urls_checked": len(exchanges),
            "cookies": {f"{origin} {name}": details for (origin, name), details in seen.items()},
        }
        return Inspection(
            findings=findings, metrics=metrics, targets=[t.url for t in targets], exchanges=exchanges
        )
