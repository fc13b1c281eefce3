"""CORS: does the app let any web page read its answers?

Each target (and the backend's promised GET endpoints) gets a GET and a preflight OPTIONS carrying a made-up
`Origin: https://evil.example`. Nothing leaves the machine: the header is only sent to the target itself.
"""

from __future__ import annotations

from urllib.parse import urlparse

import httpx

from services.analyzers.base.job import Job
from services.analyzers.running_app.check import Check, HttpTool, http_finding
from services.analyzers.running_app.client import Fetched, fetch, join_url
from services.analyzers.running_app.requirements import promised_get_paths
from services.analyzers.running_app.targets import backend_target, reachable_targets
from shared.findings import Finding, Severity

EVIL_ORIGIN = "https://evil.example"
MAX_ENDPOINTS = 5


def verdict(response: Fetched) -> tuple[str, Severity, str] | None:
    """(rule id, severity, message) when the answer lets a foreign origin read it, else None."""
    allowed = (response.header("access-control-allow-origin") or "").strip()
    credentials = (response.header("access-control-allow-credentials") or "").strip().lower() == "true"
    kind = "preflight" if response.method == "OPTIONS" else response.method
    if allowed == "*" and credentials:
        return (
            "cors-wildcard-with-credentials",
            "high",
            f"{kind} answer allows any origin (*) together with credentials",
        )
    if allowed == EVIL_ORIGIN:
        if credentials:
            return (
                "cors-reflected-origin-with-credentials",
                "high",
                f"{kind} answer reflects an arbitrary Origin ({EVIL_ORIGIN}) with credentials allowed: "
                + "any site can read authenticated responses",
            )
        return (
            "cors-reflected-origin",
            "medium",
            f"{kind} answer reflects an arbitrary Origin ({EVIL_ORIGIN}): any site can read responses",
        )
    if allowed == "null":
        return (
            "cors-null-origin",
            "high" if credentials else "medium",
            f"{kind} answer allows the 'null' origin (sandboxed frames, local files)",
        )
    if allowed == "*":
        return ("cors-wildcard-origin", "low", f"{kind} answer allows any origin (*), without credentials")
    return None


class Cors(HttpTool):
    name = "cors"

    async def check(self, job: Job, client: httpx.AsyncClient) -> Check:
        targets = [t.url for t in await reachable_targets(job, client)]
        backend = backend_target(targets, job.app_env)
        paths = (await promised_get_paths(job.app_dir, job.task_id))[:MAX_ENDPOINTS]
        urls = targets + [join_url(backend, path) for path in paths]
        exchanges = []
        for url in dict.fromkeys(urls):
            exchanges.append(await fetch(client, "GET", url, headers={"Origin": EVIL_ORIGIN}))
            exchanges.append(
                await fetch(
                    client,
                    "OPTIONS",
                    url,
                    headers={
                        "Origin": EVIL_ORIGIN,
                        "Access-Control-Request-Method": "POST",
                        "Access-Control-Request-Headers": "content-type, authorization",
                    },
                )
            )
        findings: list[Finding] = []
        reported: set[tuple[str, str]] = (
            set()
        )  # one finding per origin and rule: the app's policy, not each page's
        per_url: dict[str, dict[str, object]] = {}
        for exchange in exchanges:
            per_url.setdefault(exchange.url, {})[exchange.method] = {
                "status": exchange.status,
                "allow_origin": exchange.header("access-control-allow-origin"),
                "allow_credentials": exchange.header("access-control-allow-credentials"),
            }
            found = verdict(exchange)
            origin = "{0.scheme}://{0.netloc}".format(urlparse(exchange.url))
            if found is None or (origin, found[0]) in reported:
                continue
            reported.add((origin, found[0]))
            rule_id, severity, message = found
            findings.append(
                http_finding(
                    self.name,
                    rule_id,
                    severity,
                    f"{message} ({exchange.url})",
                    exchange.url,
                    anchor=origin,
                    cwe="CWE-942",
                    extra={
                        "method": exchange.method,
                        "access_control_allow_origin": exchange.header("access-control-allow-origin"),
                        "access_control_allow_credentials": exchange.header(
                            "access-control-allow-credentials"
                        ),
                    },
                )
            )
        return Check(
            findings=findings,
            metrics={"origin_sent": EVIL_ORIGIN, "urls": per_url},
            targets=targets,
            exchanges=exchanges,
        )
