"""Reachability: does each target answer a GET, how fast, and with what server.

This is the one tool that does not skip when nothing answers: its findings and its metrics' `status`
(`targets_unreachable`) are how the service says so. Only a target the request named is a finding when it does not
answer; a default target (a port of the app's .env, such as a frontend that is not running) that does not answer
is a note in the metrics, so a backend-only run gets no false `high` finding.
"""

from __future__ import annotations

import httpx

from services.analyzers.base.job import Job
from services.analyzers.running_app.http_tool import HttpTool, Inspection, http_finding
from services.analyzers.running_app.targets import check_targets, resolve_targets, target_sites


class Reachability(HttpTool):
    name = "reachability"

    async def inspect(self, job: Job, client: httpx.AsyncClient) -> Inspection:
        urls = resolve_targets(job)
        report = await check_targets(client, urls)
        sites = target_sites(urls, job.app_env)
        named = bool(job.target_urls)
        notes = [
            f"{probe.url} did not answer ({probe.error}): a default target from the app's .env, not named by the "
            "request, so not a finding"
            for probe in report.unreachable
            if not named
        ]
        findings = [
            http_finding(
                self.name,
                "target-unreachable",
                "high",
                f"{probe.url} did not answer: {probe.error}",
                probe.url,
                sites=sites,
                anchor="unreachable",
                extra={"error": probe.error, "elapsed_ms": probe.elapsed_ms},
            )
            for probe in report.unreachable
            if named
        ]
        findings += [
            http_finding(
                self.name,
                "target-server-error",
                "medium",
                f"{probe.url} answered GET with HTTP {probe.status}",
                probe.url,
                sites=sites,
                anchor="server-error",
                extra={"status": probe.status},
            )
            for probe in report.reachable
            if probe.status is not None and probe.status >= 500
        ]
        metrics = {**report.metrics(), "notes": notes} if notes else report.metrics()
        return Inspection(findings=findings, metrics=metrics, targets=urls, exchanges=report.probes)
