"""Sensitive paths: files and consoles an app should never serve (`/.env`, `/.git/config`, `/console` …).

Two guards against false alarms. A BASELINE: two random paths that cannot exist are fetched first; when they
answer 200 (a single-page app's catch-all), a probed path only counts if its answer clearly differs from theirs
(another content type, or a clearly different length). And a CONTENT check: the body must look like what the path
implies (`.env` has KEY=VALUE lines, `.git/config` has `[core]`, a SQLite file starts with its magic …).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from services.analyzers.base.job import Job
from services.analyzers.running_app.client import Fetched, fetch, join_url
from services.analyzers.running_app.http_tool import HttpTool, Inspection, http_finding
from services.analyzers.running_app.targets import Sites, job_sites, reachable_targets
from shared.results.findings import Finding, Severity

MAX_CONCURRENCY = 8


def _text(response: Fetched) -> str:
    return response.body.decode("utf-8", errors="replace")


def _not_html(response: Fetched) -> bool:
    if response.content_type == "text/html":
        return False
    return not _text(response).lstrip().lower().startswith(("<!doctype", "<html"))


DOTENV_LINE = re.compile(r"^\s*(export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*=", re.MULTILINE)
HTPASSWD_LINE = re.compile(r"^[^:\s<>]+:\S{4,}$", re.MULTILINE)


def _dotenv(response: Fetched) -> bool:
    return _not_html(response) and DOTENV_LINE.search(_text(response)) is not None


def _git_head(response: Fetched) -> bool:
    return re.match(r"(ref: refs/|[0-9a-f]{40}\s*$)", _text(response).strip()) is not None


def _htpasswd(response: Fetched) -> bool:
    return _not_html(response) and HTPASSWD_LINE.search(_text(response)) is not None


def _json_object(response: Fetched) -> bool:
    try:
        return isinstance(json.loads(response.body), dict)
    except ValueError:
        return False


def _contains(*markers: str) -> Callable[[Fetched], bool]:
    return lambda response: any(marker in _text(response) for marker in markers)


def _starts_with(magic: bytes) -> Callable[[Fetched], bool]:
    return lambda response: response.body.startswith(magic)


def _any_page(response: Fetched) -> bool:
    """For pages with no fixed content (an admin panel): any non-empty answer, the baseline does the rest."""
    return bool(response.body.strip())


@dataclass(frozen=True)
class Probe:
    """One path to try, the finding it yields, and how to recognise the real thing."""

    path: str
    rule_id: str
    severity: Severity
    what: str
    looks_right: Callable[[Fetched], bool]
    cwe: str = "CWE-538"


# fmt: off
PROBES: tuple[Probe, ...] = (
    Probe("/.env", "exposed-dotenv", "critical", "an environment file (secrets, keys)", _dotenv),
    Probe("/.git/config", "exposed-git-config", "high", "the Git repository's configuration", _contains("[core]")),
    Probe("/.git/HEAD", "exposed-git-head", "high", "the Git repository (its history can be downloaded)", _git_head),
    Probe("/.htpasswd", "exposed-htpasswd", "high", "a password hash file", _htpasswd),
    Probe("/backup.zip", "exposed-backup-archive", "high", "a backup archive", _starts_with(b"PK\x03\x04")),
    Probe("/backup.sql", "exposed-sql-dump", "high", "an SQL dump",
          _contains("CREATE TABLE", "INSERT INTO", "create table", "insert into")),
    Probe("/db.sqlite3", "exposed-sqlite-database", "high", "a SQLite database", _starts_with(b"SQLite format 3\x00")),
    Probe("/database.sqlite", "exposed-sqlite-database", "high", "a SQLite database",
          _starts_with(b"SQLite format 3\x00")),
    Probe("/config.json", "exposed-config-json", "medium", "a configuration file", _json_object),
    Probe("/.DS_Store", "exposed-ds-store", "low", "a macOS folder index (it lists file names)", _contains("Bud1")),
    Probe("/server-status", "exposed-server-status", "medium", "the Apache server status page",
          _contains("Server Status", "Apache Status")),
    Probe("/phpinfo.php", "exposed-phpinfo", "medium", "a phpinfo() page", _contains("phpinfo()", "PHP Version")),
    Probe("/actuator/env", "exposed-actuator-env", "high", "the Spring Boot environment endpoint",
          _contains("propertySources", "activeProfiles")),
    Probe("/wp-admin/", "exposed-wp-admin", "low", "the WordPress admin", _any_page, "CWE-200"),
    Probe("/admin", "exposed-admin-page", "medium", "an admin page", _any_page, "CWE-284"),
    Probe("/debug", "exposed-debug-endpoint", "medium", "a debug endpoint", _any_page, "CWE-489"),
    Probe("/console", "exposed-debug-console", "high", "an interactive debugger console", _any_page, "CWE-489"),
)
# fmt: on


def differs(response: Fetched, baseline: Fetched) -> bool:
    """Whether `response` is clearly not the catch-all page `baseline` shows for any unknown path.

    Length, not a hash: catch-alls often echo the requested path, so their bodies differ by a few bytes.
    """
    if response.status != baseline.status or response.content_type != baseline.content_type:
        return True
    return abs(len(response.body) - len(baseline.body)) > max(32, len(baseline.body) // 10)


def exposed(probe: Probe, response: Fetched, catch_all: list[Fetched]) -> bool:
    """A probed path counts when it answers 200 with the right kind of content and is not the catch-all page."""
    if response.status != 200 or not probe.looks_right(response):
        return False
    return all(differs(response, baseline) for baseline in catch_all)


class SensitivePaths(HttpTool):
    name = "sensitive-paths"

    async def scan(
        self, client: httpx.AsyncClient, target: str, sites: Sites
    ) -> tuple[list[Finding], dict[str, object], list[Fetched]]:
        baselines = [
            await fetch(client, "GET", join_url(target, f"/assay-{secrets.token_hex(8)}")),
            await fetch(
                client, "GET", join_url(target, f"/assay-{secrets.token_hex(8)}/{secrets.token_hex(4)}.txt")
            ),
        ]
        catch_all = [baseline for baseline in baselines if baseline.status == 200]
        gate = asyncio.Semaphore(MAX_CONCURRENCY)

        async def probe_one(probe: Probe) -> Fetched:
            async with gate:
                return await fetch(client, "GET", join_url(target, probe.path))

        responses = await asyncio.gather(*(probe_one(probe) for probe in PROBES))
        findings = [
            http_finding(
                self.name,
                probe.rule_id,
                probe.severity,
                f"{response.url} serves {probe.what} (HTTP {response.status}, {response.content_type or 'no type'}, "
                f"{len(response.body)}{'+' if response.truncated else ''} bytes)",
                response.url,
                sites=sites,
                anchor=probe.path,
                cwe=probe.cwe,
                extra={
                    "status": response.status,
                    "content_type": response.content_type,
                    "bytes": len(response.body),
                    "catch_all_baseline": bool(catch_all),
                },
            )
            for probe, response in zip(PROBES, responses, strict=True)
            if exposed(probe, response, catch_all)
        ]
        metrics: dict[str, object] = {
            "baseline": "catch-all" if catch_all else "not-found",
            "baseline_status": [baseline.status for baseline in baselines],
            "probed": len(PROBES),
            "exposed": [finding.path for finding in findings],
        }
        return findings, metrics, baselines + list(responses)

    async def inspect(self, job: Job, client: httpx.AsyncClient) -> Inspection:
        targets = [t.url for t in await reachable_targets(job, client)]
        sites = job_sites(job)
        scans = await asyncio.gather(*(self.scan(client, target, sites) for target in targets))
        return Inspection(
            findings=[finding for findings, _, _ in scans for finding in findings],
            metrics={
                "targets": {target: metrics for target, (_, metrics, _) in zip(targets, scans, strict=True)}
            },
            targets=targets,
            exchanges=[exchange for _, _, exchanges in scans for exchange in exchanges],
        )
