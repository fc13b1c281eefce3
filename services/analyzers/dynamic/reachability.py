"""Reachability: does each target answer a GET, how fast, and with what server.

This is the one tool that does not skip when nothing answers: its findings and its metrics' `status`
(`targets_unreachable`) are how the service says so.
"""

from __future__ import annotations

import httpx

from services.analyzers.base.job import Job
from services.analyzers.running_app.http_tool import HttpTool, Inspection, http_finding
from services.analyzers.running_app.targets import check_targets, resolve_targets


class Reachability(HttpTool):
    name = "reachability"

    async def inspect(self, job: Job, client: httpx.AsyncClient) -> Inspection:
        urls = resolve_targets(job)
        report = await check_targets(client, urls)
        findings = [
            http_finding(
                self.name,
                "target-unreachable",
                "high",
                f"{probe.url} did not answer: {probe.error}",
                probe.url,
                anchor="unreachable",
                extra={"error": probe.error, "elapsed_ms": probe.elapsed_ms},
            )
            for probe in report.unreachable
        ]
        findings += [
            http_finding(
                self.name,
                "target-server-error",
                "medium",
                f"{probe.url} answered GET with HTTP {probe.status}",
                probe.url,
                anchor="server-error",
                extra={"status": probe.status},
            )
            for probe in report.reachable
            if probe.status is not None and probe.status >= 500
        ]
        return Inspection(findings=findings, metrics=report.metrics(), targets=urls, exchanges=report.probes)
