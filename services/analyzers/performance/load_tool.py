"""The `load` tool: which URLs to load, one bounded run per URL, statistics and threshold findings.

URLs are loaded one after another, never at once, so that one URL's figures are not another's queueing.
Targets that do not answer are left out; when none answers the tool is skipped with a `targets_unreachable: …`
reason and `metrics.status == "targets_unreachable"`, the same report the dynamic analyzer gives.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import msgspec

from services.analyzers.base.job import Job
from services.analyzers.base.tool import ToolOutput
from services.analyzers.performance.load import Samples, generate_load
from services.analyzers.performance.options import LoadOptions, capped, ceilings, load_options
from services.analyzers.performance.stats import UrlStats, summarize
from services.analyzers.performance.thresholds import threshold_findings
from services.analyzers.running_app.client import fetch, http_client, join_url
from services.analyzers.running_app.http_tool import VERSION, replay_command
from services.analyzers.running_app.requirements import promised_get_paths
from services.analyzers.running_app.surface.discover import source_endpoints
from services.analyzers.running_app.targets import (
    UNREACHABLE,
    backend_target,
    check_targets,
    job_policy,
    resolve_targets,
    target_sites,
)
from shared.operations.config import Settings
from shared.results.findings import ToolRun
from shared.wire.options import MAX_PATHS
from shared.wire.protocol import ToolHealth


async def load_plan(
    client: httpx.AsyncClient, job: Job, targets: list[str], options: LoadOptions
) -> tuple[list[str], str, dict[str, int | None]]:
    """The URLs to load, where their paths came from (`options`, `surface` or `default`), and what each candidate
    answered when tried once.

    Without paths in the options, the candidates are the backend's GET routes without parameters, from
    requirements.json and the app's source (the surface), each tried once: only those that answer (below 400) are
    loaded, so a route the app does not have (its 404) is never counted as the app's errors. Other targets (a
    frontend) are loaded at their root when it answers.
    """
    if options.paths is not None:
        return [join_url(target, path) for target in targets for path in options.paths], "options", {}
    backend = backend_target(targets, job.app_env)
    candidates = list(
        dict.fromkeys([*await promised_get_paths(job.app_dir, job.task.id), *await source_get_paths(job)])
    )
    tried: dict[str, int | None] = {}
    plan: list[str] = []
    for url in [join_url(backend, path) for path in candidates[: MAX_PATHS * 2]] + [
        join_url(target, "/") for target in targets if target != backend or not candidates
    ]:
        answer = await fetch(client, "GET", url)
        tried[url] = answer.status
        if answer.status is not None and answer.status < 400 and len(plan) < MAX_PATHS:
            plan.append(url)
    return plan, "surface" if candidates else "default", tried


async def source_get_paths(job: Job) -> list[str]:
    """GET routes without parameters that the app's backend source declares."""
    if job.app_dir is None:
        return []
    endpoints = await asyncio.to_thread(source_endpoints, job.app_dir)
    return [e.path for e in endpoints if e.method == "GET" and "{" not in e.path]


async def load_all(
    client: httpx.AsyncClient, plan: list[str], options: LoadOptions, timeout_s: float
) -> tuple[dict[str, UrlStats], bool]:
    """Load each URL in turn; the statistics so far and whether the tool's timeout cut the run short."""
    stats: dict[str, UrlStats] = {}
    try:
        async with asyncio.timeout(timeout_s):
            for url in plan:
                samples = Samples(url=url)
                try:
                    await generate_load(
                        client,
                        samples,
                        requests=options.requests,
                        concurrency=options.concurrency,
                        duration_s=options.duration_s,
                    )
                finally:
                    # A URL cut short by the timeout still reports what it measured.
                    if samples.issued:
                        stats[url] = summarize(samples)
    except TimeoutError:
        return stats, True
    return stats, False


class LoadTool:
    name = "load"

    async def health(self, settings: Settings) -> ToolHealth:
        del settings
        return ToolHealth(name=self.name, available=True, version=VERSION)

    async def run(self, job: Job) -> ToolOutput:
        started = time.monotonic()
        settings = job.settings
        try:
            options = capped(load_options(job.tool_options(self.name), settings), settings, urls=1)
        except msgspec.ValidationError as error:
            reason = f"invalid options.{self.name}: {error}"
            return ToolOutput(run=ToolRun(tool=self.name, version=VERSION, status="failed", reason=reason))
        urls = resolve_targets(job)
        command = replay_command("performance", self.name, job, urls, msgspec.to_builtins(options))
        async with http_client(
            job_policy(job), timeout_s=options.timeout_s, connections=options.concurrency
        ) as client:
            report = await check_targets(client, urls)
            if not report.reachable:
                metrics = {"status": UNREACHABLE, "targets": report.metrics()["targets"]}
                run = ToolRun(
                    tool=self.name,
                    version=VERSION,
                    status="skipped",
                    command=command,
                    reason=report.reason(),
                    duration_s=round(time.monotonic() - started, 3),
                )
                return ToolOutput(run=run, metrics=metrics)
            plan, paths_from, tried = await load_plan(
                client, job, [probe.url for probe in report.reachable], options
            )
            plan = plan[: settings.load_max_requests]  # at least one request per URL loaded
            options = capped(options, settings, urls=len(plan))
            timeout_s = min(job.tool_timeout_s(self.name), settings.load_max_duration_s)
            stats, timed_out = await load_all(client, plan, options, timeout_s)
        findings = [
            finding
            for url, figures in stats.items()
            for finding in threshold_findings(
                url, figures, options.thresholds, target_sites(urls, job.app_env)
            )
        ]
        metrics = {
            "status": "timeout" if timed_out else report.status,
            "options": msgspec.to_builtins(options),  # as run: within the ceilings
            "ceilings": ceilings(settings),
            "paths_from": paths_from,
            "paths_tried": tried,  # each candidate's status when tried once; only those below 400 are loaded
            "urls": {url: msgspec.to_builtins(figures) for url, figures in stats.items()},
            "targets": report.metrics()["targets"],
        }
        run = ToolRun(
            tool=self.name,
            version=VERSION,
            status="timeout" if timed_out else "success",
            command=command,
            duration_s=round(time.monotonic() - started, 3),
            files_analyzed=len(stats),
            findings_count=len(findings),
            reason=f"load did not finish within {timeout_s:.1f} s" if timed_out else None,
        )
        return ToolOutput(
            run=run,
            findings=findings,
            metrics=metrics,
            raw_output=msgspec.json.encode(metrics["urls"]).decode(),
        )
