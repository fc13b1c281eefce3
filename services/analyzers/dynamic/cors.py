"""CORS: does the app let any web page read its answers?

Each target (and the backend's promised GET endpoints) gets a GET and a preflight OPTIONS carrying a made-up
`Origin: https://evil.example`. Nothing leaves the machine: the header is only sent to the target itself.
"""

from __future__ import annotations

from urllib.parse import urlparse

import httpx

from services.analyzers.base.job import Job
from services.analyzers.running_app.client import Fetched, fetch, join_url
from services.analyzers.running_app.http_tool import HttpTool, Inspection, Problem, http_finding
from services.analyzers.running_app.requirements import promised_get_paths
from services.analyzers.running_app.targets import backend_target, job_sites, reachable_targets
from shared.results.findings import Finding

EVIL_ORIGIN = "https://evil.example"
CORS_CWE = "CWE-942"  # permissive cross-domain policy with untrusted domains
MAX_ENDPOINTS = 5


def cors_problem(response: Fetched) -> Problem | None:
    """What is wrong when the answer lets a foreign origin read it, else None."""
    allowed = (response.header("access-control-allow-origin") or "").strip()
    credentials = (response.header("access-control-allow-credentials") or "").strip().lower() == "true"
    kind = "preflight" if response.method == "OPTIONS" else response.method
    if allowed == "*" and credentials:
        return Problem(
            rule_id="cors-wildcard-with-credentials",
            severity="high",
            message=f"{kind} answer allows any origin (*) together with credentials",
            cwe=CORS_CWE,
        )
    if allowed == EVIL_ORIGIN:
        if credentials:
            return Problem(
                rule_id="cors-reflected-origin-with-credentials",
                severity="high",
                message=f"{kind} answer reflects an arbitrary Origin ({EVIL_ORIGIN}) with credentials allowed: "
                + "any site can read authenticated responses",
                cwe=CORS_CWE,
            )
        return Problem(
            rule_id="cors-reflected-origin",
            severity="medium",
            message=f"{kind} answer reflects an arbitrary Origin ({EVIL_ORIGIN}): any site can read responses",
            cwe=CORS_CWE,
        )
    if allowed == "null":
        return Problem(
            rule_id="cors-null-origin",
            severity="high" if credentials else "medium",
            message=f"{kind} answer allows the 'null' origin (sandboxed frames, local files)",
            cwe=CORS_CWE,
        )
    if allowed == "*":
        return Problem(
            rule_id="cors-wildcard-origin",
            severity="low",
            message=f"{kind} answer allows any origin (*), without credentials",
            cwe=CORS_CWE,
        )
    return None


class Cors(HttpTool):
    name = "cors"

    async def inspect(self, job: Job, client: httpx.AsyncClient) -> Inspection:
        targets = [t.url for t in await reachable_targets(job, client)]
        sites = job_sites(job)
        backend = backend_target(targets, job.app_env)
        paths = (await promised_get_paths(job.app_dir, job.task.id))[:MAX_ENDPOINTS]
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
        # one finding per origin and rule: the app's policy, not each page's
        reported: set[tuple[str, str]] = set()
        per_url: dict[str, dict[str, object]] = {}
        for exchange in exchanges:
            per_url.setdefault(exchange.url, {})[exchange.method] = {
                "status": exchange.status,
                "allow_origin": exchange.header("access-control-allow-origin"),
                "allow_credentials": exchange.header("access-control-allow-credentials"),
            }
            found = cors_problem(exchange)
            origin = sites.path_of("{0.scheme}://{0.netloc}".format(urlparse(exchange.url))).split(":", 1)[0]
            if found is None or (origin, found.rule_id) in reported:
                continue
            reported.add((origin, found.rule_id))
            findings.append(
                http_finding(
                    self.name,
                    found.rule_id,
                    found.severity,
                    f"{found.message} ({exchange.url})",
                    exchange.url,
                    sites=sites,
                    anchor=origin,
                    cwe=found.cwe,
                    extra={
                        "method": exchange.method,
                        "access_control_allow_origin": exchange.header("access-control-allow-origin"),
                        "access_control_allow_credentials": exchange.header(
                            "access-control-allow-credentials"
                        ),
                    },
                )
            )
        return Inspection(
            findings=findings,
            metrics={"origin_sent": EVIL_ORIGIN, "urls": per_url},
            targets=targets,
            exchanges=exchanges,
        )
