"""Which URLs the HTTP tools probe, and whether anything answers there.

Every check (and the performance analyzer's load tool) first asks `check_targets`; when no target answers at all,
the HTTP tools are skipped with a reason that starts with `targets_unreachable:` instead of each failing in its own way.
"""

from __future__ import annotations

import asyncio
from typing import Final, Literal
from urllib.parse import urlparse

import httpx
import msgspec

from services.analyzers.base.job import Job
from services.analyzers.base.tool import SkipTool
from services.analyzers.running_app.client import Fetched, fetch
from shared.operations.app_env import app_ports
from shared.operations.target_policy import TargetNotAllowed, TargetPolicy, target_policy

NO_TARGETS = "no target URLs: pass target_urls or give the app a .env with BACKEND_PORT/FRONTEND_PORT"
UNREACHABLE: Final = "targets_unreachable"
NOT_ALLOWED: Final = "target_not_allowed"

TargetsStatus = Literal["ok", "partially_reachable", "targets_unreachable"]


class TargetReport(msgspec.Struct, frozen=True, kw_only=True):
    """A GET of every target: those that answered (any HTTP status counts) and those that did not."""

    probes: list[Fetched]

    @property
    def reachable(self) -> list[Fetched]:
        return [probe for probe in self.probes if probe.answered]

    @property
    def unreachable(self) -> list[Fetched]:
        return [probe for probe in self.probes if not probe.answered]

    @property
    def status(self) -> TargetsStatus:
        if not self.unreachable:
            return "ok"
        return "partially_reachable" if self.reachable else UNREACHABLE

    def reason(self) -> str:
        """Why nothing can be checked: `targets_unreachable: <url> (<error>); …`."""
        details = "; ".join(f"{probe.url} ({probe.error})" for probe in self.unreachable)
        return f"{UNREACHABLE}: {details}"

    def metrics(self) -> dict[str, object]:
        return {
            "status": self.status,
            "reachable": len(self.reachable),
            "unreachable": len(self.unreachable),
            "targets": {
                probe.url: {
                    "status_code": probe.status,
                    "latency_ms": probe.elapsed_ms,
                    "server": probe.header("server"),
                    "content_type": probe.content_type or None,
                    "error": probe.error,
                }
                for probe in self.probes
            },
        }


def target_urls(requested: list[str], app_env: dict[str, str]) -> list[str]:
    """URLs to probe: the requested ones, else http://127.0.0.1:<port> for each port the app's .env names."""
    if requested:
        return requested
    return [f"http://127.0.0.1:{port}" for port in app_ports(app_env)]


def job_policy(job: Job) -> TargetPolicy:
    """The targets policy of the job's app (shared/operations/target_policy.py)."""
    return target_policy(job.settings, job.app_env)


def resolve_targets(job: Job) -> list[str]:
    """The job's target URLs (requested, else from the app's .env); SkipTool when there are none or one is outside
    the targets policy (checked before anything is sent: the gateway refuses those, a direct client may not)."""
    urls = target_urls(job.target_urls, job.app_env)
    if not urls:
        raise SkipTool(NO_TARGETS)
    policy = job_policy(job)
    for url in urls:
        try:
            policy.check(url)
        except TargetNotAllowed as error:
            raise SkipTool(f"{NOT_ALLOWED}: {error}") from error
    return list(dict.fromkeys(urls))  # a URL named twice is probed once


async def check_targets(client: httpx.AsyncClient, urls: list[str]) -> TargetReport:
    """GET every target at once; a refused or timed-out connection marks the target unreachable."""
    probes = await asyncio.gather(*(fetch(client, "GET", url) for url in urls))
    return TargetReport(probes=list(probes))


async def reachable_targets(job: Job, client: httpx.AsyncClient) -> list[Fetched]:
    """The GET of every target that answered; SkipTool(`targets_unreachable: …`) when none did."""
    report = await check_targets(client, resolve_targets(job))
    if not report.reachable:
        raise SkipTool(report.reason())
    return report.reachable


def backend_target(urls: list[str], app_env: dict[str, str]) -> str:
    """The target that serves the API: the one on the .env's BACKEND_PORT when there is one, else the first."""
    port = app_env.get("BACKEND_PORT", "")
    for url in urls:
        if port.isdigit() and urlparse(url).port == int(port):
            return url
    return urls[0]


class Sites(msgspec.Struct, frozen=True):
    """The job's targets by name: `backend` (the API), `frontend` (on the .env's FRONTEND_PORT), any other
    `target<N>`. Findings and proofs name a place as `<name>:<path>` (`backend:/api/notes`), never by the sandbox's
    host and port, so that runs of one app compare."""

    bases: dict[str, str]  # name → base URL

    def path_of(self, url: str) -> str:
        """`backend:/api/notes?q=1` for a URL under a target's base; the URL itself when under none."""
        for name, base in sorted(self.bases.items(), key=lambda item: -len(item[1])):
            root = base.rstrip("/")
            if url == root or url.startswith(root + "/") or url.startswith(root + "?"):
                return f"{name}:{url[len(root) :] or '/'}"
        return url

    def url(self, name: str, path: str) -> str:
        """The URL of `path` on the target `name`."""
        return self.bases[name].rstrip("/") + "/" + path.lstrip("/")


def target_sites(urls: list[str], app_env: dict[str, str]) -> Sites:
    """Name each target: the backend as `backend_target` chooses it, the one on FRONTEND_PORT `frontend`."""
    if not urls:
        return Sites({})
    backend = backend_target(urls, app_env)
    frontend_port = app_env.get("FRONTEND_PORT", "")
    bases = {"backend": backend}
    others = 0
    for url in urls:
        if url == backend:
            continue
        if frontend_port.isdigit() and urlparse(url).port == int(frontend_port) and "frontend" not in bases:
            bases["frontend"] = url
        else:
            others += 1
            bases[f"target{others + 1}"] = url
    return Sites(bases)


def job_sites(job: Job) -> Sites:
    """The job's targets by name (SkipTool as `resolve_targets` when there are none or one is not allowed)."""
    return target_sites(resolve_targets(job), job.app_env)
