"""`make audit`: known vulnerabilities of Assay's own dependencies.

pip-audit audits the Python environment Assay runs in (this interpreter's, the project's `.venv`); `npm audit` audits
each of Assay's Node.js tool folders (eslint for the static analyzer, the contracts check), asking ASSAY_NPM_REGISTRY.
A pass is a pass only when the advisory data was there: a database that could audit none of the packages, an audit
endpoint that refuses (a registry mirror answers 405) or no network at all is exit code 2 with the reason, never a
silent "no known vulnerabilities".

Exit codes: 0 every part audited, nothing known; 1 known vulnerabilities (listed); 2 a part could not be audited.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import msgspec

from services.analyzers.static.tools.npm_audit import NpmAuditReport
from shared.operations.config import load_settings

REPO = Path(__file__).resolve().parent.parent
NODE_TOOLS = (REPO / "services" / "analyzers" / "static" / "node", REPO / "tests" / "contracts")
TIMEOUT_S = 600
CLEAN, VULNERABLE, UNAUDITED = 0, 1, 2


class Vulnerability(msgspec.Struct):
    id: str
    fix_versions: list[str] = []


class Dependency(msgspec.Struct):
    name: str
    version: str | None = None
    vulns: list[Vulnerability] = []
    skip_reason: str | None = None


class PipReport(msgspec.Struct):
    dependencies: list[Dependency]


class PartAudit(msgspec.Struct, frozen=True):
    part: str
    code: int
    lines: list[str]


def python_environment() -> PartAudit:
    """pip-audit of this interpreter's environment (Assay itself, not on PyPI, is skipped as editable)."""
    argv = [
        sys.executable,
        "-m",
        "pip_audit",
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--skip-editable",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    return pip_outcome(f"python environment ({sys.prefix})", done)


def pip_outcome(part: str, done: subprocess.CompletedProcess[str]) -> PartAudit:
    """What pip-audit's JSON report says, a database that audited nothing counting as no audit."""
    try:
        report = msgspec.json.decode(done.stdout, type=PipReport)
    except msgspec.DecodeError:
        said = done.stderr.strip()[-400:]
        return PartAudit(part, UNAUDITED, [f"pip-audit gave no report (exit {done.returncode}): {said}"])
    skipped = [dependency for dependency in report.dependencies if dependency.skip_reason]
    audited = len(report.dependencies) - len(skipped)
    if audited == 0:
        reason = skipped[0].skip_reason if skipped else "no dependency listed"
        total = len(report.dependencies)
        return PartAudit(part, UNAUDITED, [f"audited 0 of {total} packages: no advisory data ({reason})"])
    found = [
        f"{dependency.name} {dependency.version}: {vuln.id} "
        f"(fixed in {', '.join(vuln.fix_versions) or 'no release yet'})"
        for dependency in report.dependencies
        for vuln in dependency.vulns
    ]
    summary = (
        f"audited {audited} of {len(report.dependencies)} packages ({len(skipped)} skipped), "
        f"{len(found)} known vulnerabilities"
    )
    return PartAudit(part, VULNERABLE if found else CLEAN, [summary, *found])


def node_tools(folder: Path, registry: str) -> PartAudit:
    """npm audit of one of Assay's Node.js tool folders, against `registry`."""
    part = f"node tools ({folder.relative_to(REPO) if REPO in folder.parents else folder})"
    npm = shutil.which("npm")
    if npm is None:
        return PartAudit(part, UNAUDITED, ["npm not installed (needs Node.js)"])
    argv = [npm, "audit", "--json", "--registry", registry, "--prefix", str(folder)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    return npm_outcome(part, done)


def npm_outcome(part: str, done: subprocess.CompletedProcess[str]) -> PartAudit:
    """What npm audit's JSON report says; an audit endpoint that refused counts as no audit."""
    try:
        report = msgspec.json.decode(done.stdout, type=NpmAuditReport)
    except msgspec.DecodeError:
        said = done.stderr.strip()[-400:]
        return PartAudit(part, UNAUDITED, [f"npm audit gave no report (exit {done.returncode}): {said}"])
    if report.error is not None or report.message is not None or report.vulnerabilities is None:
        said = (
            report.message or (report.error.summary if report.error else "") or "no report of vulnerabilities"
        )
        return PartAudit(part, UNAUDITED, [f"the registry's audit endpoint did not answer: {said}"])
    found = [
        f"{name} ({package.severity}, {package.range})" for name, package in report.vulnerabilities.items()
    ]
    return PartAudit(part, VULNERABLE if found else CLEAN, [f"{len(found)} vulnerable packages", *found])


def main() -> int:
    registry = load_settings().npm_registry
    outcomes = [
        python_environment(),
        *(node_tools(folder, registry) for folder in NODE_TOOLS if (folder / "package-lock.json").exists()),
    ]
    verdicts = {CLEAN: "clean", VULNERABLE: "VULNERABLE", UNAUDITED: "NOT AUDITED"}
    for outcome in outcomes:
        print(f"{verdicts[outcome.code]}: {outcome.part}")
        for line in outcome.lines:
            print(f"  {line}")
    code = max(outcome.code for outcome in outcomes)
    if code == UNAUDITED:
        print(
            "make audit: some parts could not be audited (see above): run it where the advisory data can be reached",
            file=sys.stderr,
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
