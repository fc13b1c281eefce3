"""npm-audit: known vulnerabilities of the JavaScript packages the app's package-lock.json pins.

`npm audit` asks the advisory database of the registry Assay is configured with (ASSAY_NPM_REGISTRY), never one
the app names: it runs on a copy of each lockfile folder's `package.json` and `package-lock.json` alone (an app's
`.npmrc` could set the registry, a proxy, credentials or TLS settings, and npm reads it from the project folder
whatever the command line says), with empty user and global configurations and `--registry` given. Without a
lockfile, without npm, or without a registry that answers audits, the tool is `skipped` with the reason.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import msgspec

from services.analyzers.base.job import Job
from services.analyzers.base.tool import SkipTool, ToolOutput
from services.analyzers.static.tools.cli_tool import (
    AdvisoriesUnavailable,
    CliTool,
    UnreadableOutput,
    app_folder,
)
from services.analyzers.static.tools.source import AppSource, app_files
from shared.operations.config import Settings
from shared.operations.process import ProcessOutcome
from shared.results.findings import Finding, Severity, ToolRun, ToolStatus

PROJECT_FILES = ("package.json", "package-lock.json")  # all `npm audit` reads of a project
MAX_PROJECT_FILE_BYTES = 64 * 1024 * 1024
SEVERITY: dict[str, Severity] = {
    "critical": "critical",
    "high": "high",
    "moderate": "medium",
    "low": "low",
    "info": "info",
}
NETWORK_CODES = frozenset(
    {"ENOTFOUND", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EAI_AGAIN", "ENETUNREACH"}
)
# a record merged from several audits takes the first of these statuses that any of them has
STATUS_ORDER: tuple[ToolStatus, ...] = ("failed", "timeout", "cancelled", "partial", "success", "skipped")


class Advisory(msgspec.Struct):
    source: int | None = None
    title: str = ""
    url: str = ""
    severity: str = ""
    cwe: list[str] = []
    range: str = ""


class VulnerablePackage(msgspec.Struct):
    name: str
    severity: str
    via: list[str | Advisory] = []
    range: str = ""
    is_direct: bool = msgspec.field(default=False, name="isDirect")


class NpmError(msgspec.Struct):
    code: str | None = None
    summary: str = ""


class NpmAuditReport(msgspec.Struct):
    vulnerabilities: dict[str, VulnerablePackage] | None = None
    error: NpmError | None = None
    message: str | None = None  # an HTTP error from the audit endpoint
    status_code: int | None = msgspec.field(default=None, name="statusCode")


def advisory_id(advisory: Advisory) -> str:
    """The GHSA id from the advisory's URL (stable across registries), else npm's numeric source id."""
    last = advisory.url.rstrip("/").rsplit("/", 1)[-1]
    return last if last.startswith("GHSA-") else f"npm-{advisory.source}"


class NpmAudit(CliTool):
    name = "npm-audit"
    program = "npm"
    missing_hint = "needs Node.js"

    def targets(self, app_dir: Path) -> list[str]:
        """Folders (relative to the app) holding a package-lock.json."""
        files = app_files(app_dir)
        if not any(PurePosixPath(path).name == "package.json" for path in files):
            raise SkipTool("no package.json")
        locks = [
            str(PurePosixPath(path).parent)
            for path in files
            if PurePosixPath(path).name == "package-lock.json"
        ]
        if not locks:
            raise SkipTool("no package-lock.json")
        return locks

    def audit_command(self, program: str, folder: str, registry: str, scratch: Path) -> list[str]:
        """One project per call, `folder` relative to the working directory `scratch` (a copy of the app's files),
        whose empty `user.npmrc` and `global.npmrc` stand for the machine's configurations (npm refuses one file
        for both)."""
        return [
            program, "audit", "--json", "--userconfig", str(scratch / "user.npmrc"),
            "--globalconfig", str(scratch / "global.npmrc"), "--registry", registry, "--prefix", folder,
        ]  # fmt: skip

    def advisory_address(self, settings: Settings) -> tuple[str, int]:
        address = urlsplit(settings.npm_registry)
        return address.hostname or "", address.port or (80 if address.scheme == "http" else 443)

    async def run(self, job: Job) -> ToolOutput:
        """One `npm audit` per lockfile folder, merged into one record."""
        app_dir = app_folder(job)
        program, version = await self.ready(job.settings)
        folders = await asyncio.to_thread(self.targets, app_dir)
        await self.check_advisory_host(job.settings)
        scratch = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="assay-npm-audit-"))
        try:
            await asyncio.to_thread(copy_projects, app_dir, folders, scratch)
            outputs = []
            for folder in folders:
                argv = self.audit_command(program, folder, job.settings.npm_registry, scratch)
                outcome = await job.run_process(self.name, argv, cwd=scratch)
                outputs.append(await self.output(outcome, app_dir, version=version, files_analyzed=1))
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)
        return outputs[0] if len(outputs) == 1 else merge(outputs)

    def parse(self, outcome: ProcessOutcome, source: AppSource) -> list[Finding]:
        report = msgspec.json.decode(outcome.stdout, type=NpmAuditReport)
        if report.error and report.error.code in NETWORK_CODES:
            raise AdvisoriesUnavailable(f"offline: {report.error.summary or report.error.code}")
        http_error = report.error is not None and (report.error.code or "")[1:].isdigit()  # E405, E500 …
        if report.status_code is not None or http_error:
            said = report.message or (report.error.summary if report.error else "")
            raise AdvisoriesUnavailable(f"the registry's advisory database did not answer: {said}")
        if report.error:
            raise UnreadableOutput(f"{report.error.code}: {report.error.summary}")
        lockfile = (PurePosixPath(outcome.argv[-1]) / "package-lock.json").as_posix()
        return [
            finding
            for package in (report.vulnerabilities or {}).values()
            for finding in package_findings(package, lockfile, source)
        ]


def copy_projects(app_dir: Path, folders: list[str], scratch: Path) -> None:
    """Copy each folder's package.json and package-lock.json (nothing else: no `.npmrc`) to the same place under
    `scratch`, beside empty user and global configurations. A link is not followed (it could name any file of the
    host), and a file is bounded in size."""
    for empty in ("user.npmrc", "global.npmrc"):
        (scratch / empty).write_bytes(b"")
    for folder in folders:
        target = scratch / folder
        target.mkdir(parents=True, exist_ok=True)
        for name in PROJECT_FILES:
            source = app_dir / folder / name
            try:
                descriptor = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                continue
            except OSError as error:  # ELOOP: a link
                raise SkipTool(f"{folder}/{name} cannot be read as a plain file: {error.strerror}") from error
            with os.fdopen(descriptor, "rb") as file:
                data = file.read(MAX_PROJECT_FILE_BYTES + 1)
            if len(data) > MAX_PROJECT_FILE_BYTES:
                raise SkipTool(f"{folder}/{name} is larger than {MAX_PROJECT_FILE_BYTES} bytes")
            (target / name).write_bytes(data)


def package_findings(package: VulnerablePackage, lockfile: str, source: AppSource) -> list[Finding]:
    """One finding per advisory against the package; one for a package vulnerable only through others."""
    marker = f'"node_modules/{package.name}"'
    line = next((n for n, text in enumerate(source.lines(lockfile), start=1) if marker in text), None)
    advisories = [item for item in package.via if isinstance(item, Advisory)]
    through = [item for item in package.via if isinstance(item, str)]
    kind = "direct" if package.is_direct else "transitive"
    if not advisories:
        return [
            source.finding(
                rule_id="vulnerable-dependency",
                severity=SEVERITY.get(package.severity, "medium"),
                message=f"{package.name} ({kind}, {package.range}) is vulnerable through {', '.join(through)}",
                path=lockfile,
                line=line,
                category="dependency",
                extra={"package": package.name},
            )
        ]
    return [
        source.finding(
            rule_id=advisory_id(advisory),
            severity=SEVERITY.get(advisory.severity or package.severity, "medium"),
            message=f"{package.name} ({kind}, {advisory.range or package.range}): {advisory.title}",
            cwe=advisory.cwe[0] if advisory.cwe else None,
            help_url=advisory.url or None,
            path=lockfile,
            line=line,
            category="dependency",
            extra={"package": package.name},
        )
        for advisory in advisories
    ]


def merge(outputs: list[ToolOutput]) -> ToolOutput:
    """Several lockfiles' audits as one record: the worst status, every finding, every command in metrics."""
    runs = [output.run for output in outputs]
    status = next(status for status in STATUS_ORDER if any(run.status == status for run in runs))
    findings = [finding for output in outputs for finding in output.findings]
    run = ToolRun(
        tool=runs[0].tool,
        status=status,
        version=runs[0].version,
        command=runs[0].command,
        exit_code=max((run.exit_code or 0) for run in runs),
        duration_s=round(sum(run.duration_s for run in runs), 3),
        files_analyzed=sum(run.files_analyzed for run in runs if run.status != "skipped"),
        findings_count=len(findings),
        reason="; ".join(f"{run.command[-1]}: {run.reason}" for run in runs if run.reason) or None,
    )
    raw = "\n".join(output.raw_output for output in outputs)
    return ToolOutput(
        run=run, findings=findings, raw_output=raw, metrics={"commands": [r.command for r in runs]}
    )
