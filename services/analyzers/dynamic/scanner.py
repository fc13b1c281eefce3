"""wapiti, the established open-source scanner, beside Assay's own checks: run as a tool like the static ones (its
own virtualenv, installed by `make install`; argv recorded and replayable; its JSON report parsed into findings) and
fed the surface Assay found, as an OpenAPI document (a crawler alone finds little in apps whose API takes JSON and
has no links).

Its modules: command execution, file handling, SQL injection, reflected and stored XSS, open redirect, CRLF and CSRF.
Its SSRF module needs a host outside the machine and is left out. Its findings carry no proof (wapiti gives none that
Assay can replay), so each is at most `low`: they are there to compare with, on every run.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from services.analyzers.base.job import Job
from services.analyzers.base.tool import SkipTool, ToolOutput
from services.analyzers.dynamic.recon import ReconCache
from services.analyzers.running_app.surface.model import Endpoint, Surface, matches
from shared.operations.config import Settings
from shared.results.findings import Finding, ToolRun, ToolStatus, fingerprint
from shared.wire.protocol import ToolHealth

MODULES = "exec,file,sql,xss,permanentxss,redirect,crlf,csrf"
DOCUMENT = "surface-openapi.json"
REPORT = "report.json"
SCANNER_VENV = "scanner"  # beside the project's own: <venv>/scanner (Makefile)
CWE_BY_CATEGORY = {
    "SQL Injection": "CWE-89",
    "Blind SQL Injection": "CWE-89",
    "Cross Site Scripting": "CWE-79",
    "Stored Cross Site Scripting": "CWE-79",
    "Command execution": "CWE-78",
    "Path Traversal": "CWE-22",
    "Open Redirect": "CWE-601",
    "CRLF Injection": "CWE-93",
    "Cross Site Request Forgery": "CWE-352",
}


def wapiti_path() -> str | None:
    """wapiti from its own virtualenv beside this interpreter's, else from PATH."""
    own = Path(sys.prefix) / SCANNER_VENV / "bin" / "wapiti"
    return str(own) if own.exists() else shutil.which("wapiti")


def wapiti_version(path: str) -> str:
    """`wapiti 3.2.3`, read from its installed package's metadata beside the executable (running `wapiti
    --version` takes seconds: it loads every module)."""
    found = sorted(Path(path).resolve().parent.parent.glob("lib/python*/site-packages/wapiti3-*.dist-info"))
    return (
        "wapiti " + found[-1].name.removeprefix("wapiti3-").removesuffix(".dist-info") if found else "wapiti"
    )


def openapi_of(surface: Surface, target: str) -> dict[str, Any]:
    """An OpenAPI 3 document of the target's endpoints, with each field as a parameter or body property."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in surface.on(target):
        operation: dict[str, Any] = {"responses": {"200": {"description": "ok"}}}
        parameters = [
            {
                "name": f.name,
                "in": f.location,
                "required": f.location == "path",
                "schema": {"type": _type(f.type)},
            }
            for f in endpoint.fields
            if f.location in ("query", "path", "header", "cookie")
        ]
        if parameters:
            operation["parameters"] = parameters
        body = [f for f in endpoint.fields if f.location in ("json", "form")]
        if body and endpoint.method != "GET":
            media = (
                "application/json" if endpoint.body_kind == "json" else "application/x-www-form-urlencoded"
            )
            schema = {
                "type": "object",
                "properties": {f.name: {"type": _type(f.type), "example": "assay"} for f in body},
            }
            operation["requestBody"] = {"content": {media: {"schema": schema}}}
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {"openapi": "3.0.0", "info": {"title": "surface found by Assay", "version": "1"}, "paths": paths}


def _type(kind: str) -> str:
    return kind if kind in ("integer", "number", "boolean") else "string"


def parse_report(report: dict[str, Any], endpoints: list[Endpoint], base: str) -> list[Finding]:
    """wapiti's JSON report as findings: one per vulnerability or anomaly (an answer of HTTP 500 to a payload), on
    its route's handler when Assay knows it."""
    findings = []
    reported = [
        (kind, category, entries)
        for kind in ("vulnerabilities", "anomalies")
        for category, entries in (report.get(kind) or {}).items()
    ]
    for kind, category, entries in reported:
        for entry in entries or []:
            path = str(entry.get("path") or "/")
            method = str(entry.get("method") or "GET").upper()
            handler = next(
                (e.handler for e in endpoints if e.handler and e.method == method and matches(e.path, path)),
                None,
            )
            parameter = str(entry.get("parameter") or "")
            rule = ("wapiti-" if kind == "vulnerabilities" else "wapiti-anomaly-") + category.lower().replace(
                " ", "-"
            )
            findings.append(
                Finding(
                    tool="wapiti",
                    rule_id=rule,
                    severity="low",
                    message=f"wapiti: {category} at {method} {path}"
                    + (f" ({parameter})" if parameter else "")
                    + f": {entry.get('info', '')}"[:500],
                    path=handler.path if handler else f"backend:{path}",
                    line=handler.line if handler else None,
                    end_line=handler.end_line if handler else None,
                    category="security",
                    cwe=CWE_BY_CATEGORY.get(category),
                    fingerprint=fingerprint("wapiti", rule, f"{method} {path}", parameter),
                    extra={
                        "wapiti_level": entry.get("level"),
                        "parameter": parameter,
                        "http_request": str(entry.get("http_request", ""))[:2000],
                        "base": base,
                    },
                )
            )
    return findings


class Wapiti:
    name = "wapiti"

    def __init__(self, recons: ReconCache) -> None:
        self.recons = recons

    async def health(self, settings: Settings) -> ToolHealth:
        del settings
        path = wapiti_path()
        if path is None:
            return ToolHealth(
                name=self.name,
                available=False,
                reason="wapiti is not installed (make install puts it in <venv>/scanner)",
            )
        return ToolHealth(
            name=self.name, available=True, version=await asyncio.to_thread(wapiti_version, path)
        )

    async def run(self, job: Job) -> ToolOutput:
        started = time.monotonic()
        path = wapiti_path()
        if path is None:
            raise SkipTool("wapiti is not installed")
        recon = await self.recons.of(job)
        target = "backend" if "backend" in recon.sites.bases else next(iter(recon.sites.bases))
        base = recon.sites.bases[target].rstrip("/") + "/"
        timeout_s = min(job.settings.scanner_max_s, job.tool_timeout_s(self.name))
        with tempfile.TemporaryDirectory(prefix="assay-wapiti-") as folder:
            work = Path(folder)
            openapi = openapi_of(recon.surface, target)
            await asyncio.to_thread((work / DOCUMENT).write_text, json.dumps(openapi))
            report = work / REPORT
            # Relative names in the working folder: the argv replays anywhere the document (kept in the metrics) is.
            argv = [
                path, "-u", base, "--swagger", DOCUMENT, "--scope", "folder", "-m", MODULES,
                "-f", "json", "-o", REPORT, "--flush-session", "--no-bugreport", "-v", "0",
                "--store-session", "session", "--store-config", "config",
                "--max-scan-time", str(int(timeout_s * 0.85)), "--max-attack-time", str(max(5, int(timeout_s * 0.12))),
                "-t", "5", "-d", "3",
            ]  # fmt: skip
            session = next(iter(recon.sessions), None)
            if session is not None:
                for value in (v for k, v in session.headers.items() if k == "Authorization"):
                    argv += ["-H", f"Authorization: {value}"]
                if session.cookies:
                    argv += ["-C", "; ".join(f"{k}={v}" for k, v in session.cookies.items())]
            outcome = await job.run_process(self.name, argv, cwd=work)
            text = await asyncio.to_thread(report.read_text) if report.exists() else ""
        parsed: dict[str, Any] = json.loads(text) if text else {}
        findings = parse_report(parsed, recon.surface.on(target), base) if parsed else []
        status: ToolStatus = "timeout" if outcome.timed_out else "success" if parsed else "failed"
        run = ToolRun(
            tool=self.name,
            status=status,
            version=(await self.health(job.settings)).version,
            command=outcome.argv,
            exit_code=outcome.exit_code,
            duration_s=round(time.monotonic() - started, 3),
            files_analyzed=len(recon.surface.on(target)),
            findings_count=len(findings),
            reason=None if parsed else (outcome.stderr or outcome.stdout)[-500:] or "no report",
        )
        raw = msgspec.json.encode({"report": parsed, "stderr_tail": outcome.stderr[-2000:]}).decode()
        return ToolOutput(
            run=run,
            findings=findings,
            raw_output=raw,
            metrics={"endpoints_fed": len(recon.surface.on(target)), "modules": MODULES, "openapi": openapi},
        )
