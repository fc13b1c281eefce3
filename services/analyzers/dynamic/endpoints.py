"""Endpoints: does the running backend answer each endpoint its requirements.json promises, with that status?

Endpoints are called in file order (a POST that creates something usually precedes the GET that reads it), with
the JSON body the file gives. This tool writes to the app, as a user following the requirements would.
"""

from __future__ import annotations

import httpx

from services.analyzers.base.job import Job
from services.analyzers.base.tool import SkipTool
from services.analyzers.running_app.client import fetch, join_url
from services.analyzers.running_app.http_tool import HttpTool, Inspection, http_finding
from services.analyzers.running_app.requirements import REQUIREMENTS_FILE, load_requirements
from services.analyzers.running_app.targets import backend_target, job_sites, reachable_targets

MAX_ENDPOINTS = 100


class Endpoints(HttpTool):
    name = "endpoints"

    async def inspect(self, job: Job, client: httpx.AsyncClient) -> Inspection:
        targets = [t.url for t in await reachable_targets(job, client)]
        requirements = await load_requirements(job.app_dir)  # an invalid file fails the tool with the reason
        if requirements is None:
            raise SkipTool(f"no {REQUIREMENTS_FILE}")
        if not requirements.endpoints:
            raise SkipTool(f"{REQUIREMENTS_FILE} lists no endpoints")
        backend = backend_target(targets, job.app_env)
        exchanges, findings, results = [], [], []
        for endpoint in requirements.endpoints[:MAX_ENDPOINTS]:
            exchange = await fetch(
                client, endpoint.method, join_url(backend, endpoint.path), json_body=endpoint.body
            )
            exchanges.append(exchange)
            passed = exchange.status == endpoint.expected_status
            results.append(
                {
                    "method": endpoint.method,
                    "path": endpoint.path,
                    "expected_status": endpoint.expected_status,
                    "actual_status": exchange.status,
                    "passed": passed,
                    "error": exchange.error,
                }
            )
            if passed:
                continue
            actual = f"HTTP {exchange.status}" if exchange.answered else f"no answer ({exchange.error})"
            findings.append(
                http_finding(
                    self.name,
                    "endpoint-mismatch",
                    "medium",
                    f"{endpoint.method} {endpoint.path}: expected HTTP {endpoint.expected_status}, got {actual}",
                    exchange.url,
                    sites=job_sites(job),
                    anchor=f"{endpoint.method} {endpoint.path}",
                    category="requirements",
                    extra={
                        "method": endpoint.method,
                        "expected_status": endpoint.expected_status,
                        "actual_status": exchange.status,
                        "error": exchange.error,
                    },
                )
            )
        metrics = {
            "backend": backend,
            "total": len(results),
            "passed": sum(1 for result in results if result["passed"]),
            "failed": sum(1 for result in results if not result["passed"]),
            "results": results,
        }
        return Inspection(findings=findings, metrics=metrics, targets=[backend], exchanges=exchanges)
