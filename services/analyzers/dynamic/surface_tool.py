"""The `surface` tool: records the app's attack surface as the active checks see it (`services/dynamic.json`,
metrics.surface): each endpoint, where it was found (source, openapi, requirements, crawl), for source routes the
handler's `file:line` and the fields it reads, and which users the checks act as."""

from __future__ import annotations

from typing import Any

import httpx

from services.analyzers.base.job import Job
from services.analyzers.dynamic.recon import ReconCache
from services.analyzers.running_app.http_tool import HttpTool, Inspection
from services.analyzers.running_app.surface.model import Endpoint


def describe(endpoint: Endpoint) -> dict[str, Any]:
    described: dict[str, Any] = {
        "method": endpoint.method,
        "path": endpoint.path,
        "target": endpoint.target,
        "found_by": endpoint.found_by,
        "fields": [{"name": f.name, "in": f.location, "type": f.type} for f in endpoint.fields],
    }
    if endpoint.handler is not None:
        described["handler"] = f"{endpoint.handler.path}:{endpoint.handler.line}"
        described["function"] = endpoint.handler.function
    if endpoint.expected_status is not None:
        described["expected_status"] = endpoint.expected_status
    return described


class SurfaceTool(HttpTool):
    name = "surface"

    def __init__(self, recons: ReconCache) -> None:
        self.recons = recons

    async def inspect(self, job: Job, client: httpx.AsyncClient) -> Inspection:
        recon = await self.recons.of(job)
        metrics = {
            "endpoints": [describe(endpoint) for endpoint in recon.surface.endpoints],
            "counts": recon.surface.counts,
            "users": recon.auth,
            "notes": recon.surface.notes,
            "targets": sorted(recon.sites.bases),
        }
        return Inspection(
            findings=[], metrics=metrics, targets=list(recon.sites.bases.values()), exchanges=recon.exchanges
        )
