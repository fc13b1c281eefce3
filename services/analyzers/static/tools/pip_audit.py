"""pip-audit: known vulnerabilities of the Python packages the app's requirements files pin.

It asks an advisory database (PyPI's vulnerability data). When that database cannot be reached, or can audit none of
the packages, the tool is `skipped` with the reason rather than reporting a clean bill of health it never earned.
"""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path, PurePosixPath

import msgspec

from services.analyzers.base.tool import SkipTool
from services.analyzers.static.tools.cli_tool import AdvisoriesUnavailable, CliTool, UnreadableOutput, tail
from services.analyzers.static.tools.source import AppSource, app_files
from services.analyzers.static.tools.warm_tool import WarmTool
from shared.operations.config import Settings
from shared.operations.process import ProcessOutcome
from shared.results.findings import Finding

ADVISORY_HOST = "pypi.org"  # pip-audit's default advisory database
ADVISORY_PORT = 443
REQUIREMENTS = re.compile(r"^requirements[\w.-]*\.txt$")
# what requests/urllib3 print when the database is not there
CONNECTION_ERRORS = (
    "ConnectionError",
    "Max retries exceeded",
    "Name or service not known",
    "Temporary failure in name resolution",
    "Connection refused",
    "timed out",
    "Network is unreachable",
)


class Vulnerability(msgspec.Struct):
    id: str
    fix_versions: list[str] = []
    aliases: list[str] = []
    description: str = ""


class Dependency(msgspec.Struct):
    name: str
    version: str | None = None
    vulns: list[Vulnerability] = []
    skip_reason: str | None = None


class AuditReport(msgspec.Struct):
    dependencies: list[Dependency]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_line(source: AppSource, files: list[str], package: str) -> tuple[str | None, int | None]:
    """The requirements file and line that name `package`, so a finding points at the pin to change."""
    wanted = _canonical(package)
    for path in files:
        for number, text in enumerate(source.lines(path), start=1):
            name = re.split(r"[\s<>=!~;\[@]", text.strip(), maxsplit=1)[0]
            if name and _canonical(name) == wanted:
                return path, number
    return (files[0], None) if files else (None, None)


class PipAudit(CliTool):
    name = "pip-audit"
    program = "pip-audit"
    # its imports are most of its CPU on an app (0.45 of 0.5 s); the warm-up run only imports (its argument is no
    # project folder), it asks no advisory database
    warm = WarmTool("pip-audit")

    def targets(self, app_dir: Path) -> list[str]:
        files = [path for path in app_files(app_dir) if REQUIREMENTS.match(PurePosixPath(path).name)]
        if not files:
            raise SkipTool("no requirements.txt")
        return files

    def command(self, program: str, files: list[str]) -> list[str]:
        """The requirements are taken as pinned and never installed (`--no-deps --disable-pip`): pip does not run,
        so an app's own `--index-url`, `--extra-index-url` or `--find-links` lines (and any pip configuration)
        reach nothing; only the advisory database named here is asked."""
        requirements = [argument for path in files for argument in ("-r", path)]
        return [
            program,
            *requirements,
            "--no-deps",
            "--disable-pip",
            "--vulnerability-service",
            "pypi",
            "--format",
            "json",
            "--progress-spinner",
            "off",
        ]

    def advisory_address(self, settings: Settings) -> tuple[str, int]:
        del settings
        return ADVISORY_HOST, ADVISORY_PORT

    def parse(self, outcome: ProcessOutcome, source: AppSource) -> list[Finding]:
        if not outcome.stdout.strip():
            said = outcome.stderr
            if any(marker in said for marker in CONNECTION_ERRORS):
                raise AdvisoriesUnavailable(
                    f"offline: the advisory database did not answer ({tail(said)[-200:]})"
                )
            raise UnreadableOutput(f"no report: {tail(said)}")
        report = msgspec.json.decode(outcome.stdout, type=AuditReport)
        skipped = [dependency for dependency in report.dependencies if dependency.skip_reason]
        if report.dependencies and len(skipped) == len(report.dependencies):
            reasons = "; ".join(str(dependency.skip_reason) for dependency in skipped)
            raise AdvisoriesUnavailable(f"the advisory database could audit no dependency: {reasons}")
        files = [argument for flag, argument in pairwise(outcome.argv) if flag == "-r"]
        findings = []
        for dependency in report.dependencies:
            path, line = (
                requirement_line(source, files, dependency.name) if dependency.vulns else (None, None)
            )
            for vulnerability in dependency.vulns:
                fixes = ", ".join(vulnerability.fix_versions) or "no fixed version yet"
                also = f" ({', '.join(vulnerability.aliases)})" if vulnerability.aliases else ""
                findings.append(
                    source.finding(
                        rule_id=vulnerability.id,
                        severity="high",
                        message=f"{dependency.name} {dependency.version} has {vulnerability.id}{also}; fixed in: {fixes}",
                        path=path,
                        line=line,
                        category="dependency",
                        help_url=f"https://osv.dev/vulnerability/{vulnerability.id}",
                        extra={
                            "package": dependency.name,
                            "version": dependency.version,
                            "fix_versions": vulnerability.fix_versions,
                            "aliases": vulnerability.aliases,
                        },
                    )
                )
        return findings

    def gaps(self, outcome: ProcessOutcome) -> str | None:
        """Packages pip-audit could not resolve or audit (a skip_reason each) make the run partial."""
        if not outcome.stdout.strip():
            return None
        report = msgspec.json.decode(outcome.stdout, type=AuditReport)
        skipped = [
            f"{dependency.name} ({dependency.skip_reason})"
            for dependency in report.dependencies
            if dependency.skip_reason
        ]
        if not skipped:
            return None
        audited = len(report.dependencies) - len(skipped)
        return f"{len(skipped)} of {len(report.dependencies)} packages not audited: {'; '.join(skipped)}; {audited} audited"
