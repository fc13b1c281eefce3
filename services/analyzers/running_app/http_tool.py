"""What every HTTP tool shares: its version, its findings anchored on URLs, its tool run and replay command.

An HTTP tool has no subprocess of its own, so the `command` it records is the one that re-runs exactly this
tool against the same targets with the same options (`python -m services.analyzers.<service>.replay …`), which
prints the same kind of record.
"""

from __future__ import annotations

import asyncio
import json
import time
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

import httpx
import msgspec

from services.analyzers.base.job import Job
from services.analyzers.base.tool import ToolOutput
from services.analyzers.running_app.client import Fetched, http_client
from services.analyzers.running_app.targets import Sites, job_policy
from shared.operations.config import Settings
from shared.results.findings import Finding, Severity, ToolRun, ToolStatus, fingerprint
from shared.wire.protocol import ToolHealth


def _version() -> str:
    try:
        own = package_version("assay")
    except PackageNotFoundError:
        own = "dev"
    return f"assay {own} (httpx {httpx.__version__})"


VERSION = _version()


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """What an HTTP tool judged wrong about a URL, before it is a finding: its rule, severity, message and
    CWE."""

    rule_id: str
    severity: Severity
    message: str
    cwe: str | None = None


def http_finding(
    tool: str,
    rule_id: str,
    severity: Severity,
    message: str,
    url: str,
    *,
    sites: Sites,
    anchor: str,
    category: str = "http",
    cwe: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Finding:
    """A finding about a URL, placed as `<target>:<path>` (`backend:/api/notes`): neither the host nor the port
    of a run is part of its path or fingerprint. `anchor` (a header or cookie name, a path) keeps the fingerprint
    stable when the figures in the message change from run to run."""
    place = sites.path_of(url)
    return Finding(
        tool=tool,
        rule_id=rule_id,
        severity=severity,
        message=message,
        path=place,
        category=category,
        cwe=cwe,
        fingerprint=fingerprint(tool, rule_id, place, anchor),
        extra=extra or {},
    )


def replay_command(
    service: str, tool: str, job: Job, targets: list[str], options: dict[str, Any]
) -> list[str]:
    """The argv that re-runs one HTTP tool: the targets it probed and the options it used, spelled out."""
    argv = [
        "python",
        "-m",
        f"services.analyzers.{service}.replay",
        tool,
        "--model",
        job.task.model_slug,
        "--app",
        str(job.task.app_number),
    ]
    for url in targets:
        argv += ["--target", url]
    if options:
        argv += ["--options", json.dumps({tool: options}, sort_keys=True)]
    return argv


class Inspection(msgspec.Struct, kw_only=True):
    """What an HTTP tool found: findings, measurements, the URLs it inspected and every exchange it made."""

    findings: list[Finding]
    metrics: dict[str, Any]
    targets: list[str]
    exchanges: list[Fetched]
    partial: str | None = None  # why part of the tool's work could not be judged (its run is then `partial`)


def exchange_log(exchanges: list[Fetched]) -> str:
    """The raw output of an HTTP tool: each request and its answer's status and headers (bodies left out)."""
    return msgspec.json.encode([exchange.summary() for exchange in exchanges]).decode()


class HttpTool:
    """Base of the tools that inspect a running app over HTTP: health, timeout, client and tool run;
    subclasses implement `inspect`."""

    name = ""
    service = "dynamic"

    async def health(self, settings: Settings) -> ToolHealth:
        del settings
        return ToolHealth(name=self.name, available=True, version=VERSION)

    async def inspect(self, job: Job, client: httpx.AsyncClient) -> Inspection:
        raise NotImplementedError

    async def run(self, job: Job) -> ToolOutput:
        """Run `inspect` within the tool's timeout; SkipTool raised by it reaches the runner as `skipped`."""
        started = time.monotonic()
        timeout_s = job.tool_timeout_s(self.name)
        options = job.tool_options(self.name)

        def tool_run(
            status: ToolStatus, targets: list[str], findings: int = 0, reason: str | None = None
        ) -> ToolRun:
            return ToolRun(
                tool=self.name,
                status=status,
                version=VERSION,
                command=replay_command(self.service, self.name, job, targets, options),
                duration_s=round(time.monotonic() - started, 3),
                files_analyzed=len(targets) if status in ("success", "partial") else 0,
                findings_count=findings,
                reason=reason,
            )

        try:
            async with asyncio.timeout(timeout_s), http_client(job_policy(job)) as client:
                result = await self.inspect(job, client)
        except TimeoutError:
            return ToolOutput(
                run=tool_run("timeout", job.target_urls, reason=f"no result within {timeout_s:.1f} s")
            )
        status: ToolStatus = "partial" if result.partial else "success"
        return ToolOutput(
            run=tool_run(status, result.targets, findings=len(result.findings), reason=result.partial),
            findings=result.findings,
            raw_output=exchange_log(result.exchanges),
            metrics=result.metrics,
        )
