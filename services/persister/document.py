"""The result documents of a task, built from data: the primary JSON, one JSON per service, the consolidated
SARIF and the manifest. Pure functions; they return bytes and leave the writing to `folders`.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata as package_metadata
from typing import Any

import msgspec

from services.persister.lookups import TaskSnapshot
from services.persister.staging import StagedService
from shared.results.findings import Finding, ToolRun, findings_by_tool, severity_breakdown
from shared.results.sarif import merge_logs, sarif_for
from shared.results.verdicts import Verdicts
from shared.wire.app_run import AppRun
from shared.wire.messages import utcnow

DOCUMENT_SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
SARIF_NAME = "consolidated.sarif.json"
APP_RECORD_NAME = "services/app.json"
SUCCESSFUL_STATUSES = frozenset({"completed", "partial"})


@functools.cache
def assay_version() -> str:
    """The installed package's version (read once: the metadata lookup scans the installed distributions)."""
    try:
        return package_metadata.version("assay")
    except package_metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Ending:
    """How the task ended, as the documents report it."""

    status: str
    reason: str | None
    finished_at: datetime
    app: AppRun | None = None  # the run of the app Assay started for the task, if any
    verdicts: Verdicts | None = None  # judged where the task ends (services/persister/judgement.py)


@dataclass(frozen=True)
class RenderedResult:
    """Every file of a result folder (relative name → bytes) and the counts the task row takes from it."""

    files: dict[str, bytes]
    findings_count: int
    severity_breakdown: dict[str, int]


def primary_name(task: TaskSnapshot) -> str:
    """`<model_slug>_app<N>_<task_id>.json`."""
    return f"{task.task.model_slug}_app{task.task.app_number}_{task.task.id}.json"


def _json(value: Any) -> bytes:
    # Indented: people open these files; msgspec keeps even large documents fast.
    return msgspec.json.format(msgspec.json.encode(value), indent=2) + b"\n"


def _finding_dict(finding: Finding, service: str) -> dict[str, Any]:
    return {**msgspec.to_builtins(finding), "service": service}


def _service_sarif(staged: StagedService) -> dict[str, Any] | None:
    result = staged.result
    if result is None:
        return None
    if result.sarif.get("runs"):
        return result.sarif
    if result.tools or result.findings:
        # An analyzer that sent no SARIF still gets its findings into the consolidated log.
        return sarif_for(list(result.tools), list(result.findings))
    return None


def _service_document(staged: StagedService) -> dict[str, Any]:
    body = msgspec.to_builtins(staged.result) if staged.result is not None else {"service": staged.service}
    body.update(status=staged.status, error=staged.error or body.get("error"), event_id=staged.event_id)
    return body


def _tool_entry(run: ToolRun, service: str) -> dict[str, Any]:
    return {**msgspec.to_builtins(run), "service": service}


def summarize(ending: Ending, services: list[StagedService]) -> dict[str, Any]:
    """Counts over every finding and tool of the task's services."""
    findings = [finding for staged in services if staged.result for finding in staged.result.findings]
    tools = [run for staged in services if staged.result for run in staged.result.tools]
    return {
        "total_findings": len(findings),
        "services_executed": len(services),
        "tools_executed": sum(1 for run in tools if run.status != "skipped"),
        "status": ending.status,
        # the findings of a cancelled task come from the tools that finished before the cancel
        "from_cancelled_task": ending.status == "cancelled",
        "severity_breakdown": severity_breakdown(findings),
        "findings_by_tool": findings_by_tool(findings),
    }


def primary_document(task: TaskSnapshot, ending: Ending, services: list[StagedService]) -> dict[str, Any]:
    """The task's main result: what ran, every finding, every tool run and raw output, and the summary."""
    findings: list[dict[str, Any]] = []
    tool_results: dict[str, dict[str, Any]] = {}
    raw_outputs: dict[str, str] = {}
    for staged in services:
        if staged.result is None:
            continue
        findings.extend(_finding_dict(finding, staged.service) for finding in staged.result.findings)
        tool_results.update({run.tool: _tool_entry(run, staged.service) for run in staged.result.tools})
        raw_outputs.update(staged.result.raw_outputs)
    summary = summarize(ending, services)
    started = task.started_at or task.created_at
    return {
        "task_id": task.task.id,
        "model_slug": task.task.model_slug,
        "app_number": task.task.app_number,
        "analysis_type": task.task.analysis_type,
        "timestamp": task.created_at,
        "metadata": {
            "priority": task.priority,
            "tools": task.tools,
            "services": task.services or [staged.service for staged in services],
            "started_at": task.started_at,
            "finished_at": ending.finished_at,
            "duration_s": round(max(0.0, (ending.finished_at - started).total_seconds()), 3),
            "status_reason": ending.reason,
            "worker": task.worker,
            "assay_version": assay_version(),
        },
        "results": {
            "findings": findings,
            "tools_used": [name for name, record in tool_results.items() if record["status"] != "skipped"],
            "tool_results": tool_results,
            "raw_outputs": raw_outputs,
            "summary": summary,
            "success": ending.status in SUCCESSFUL_STATUSES,
        },
        "summary": summary,
        "verdicts": ending.verdicts,
        "waived_rules": list(task.waived_rules),
        "schema_version": DOCUMENT_SCHEMA_VERSION,
        "trace_id": task.trace_id,
    }


def manifest(task: TaskSnapshot, primary: str, files: dict[str, bytes], verdicts: Verdicts | None) -> bytes:
    """Every file of the folder but the manifest itself, with size and sha256, so a reader can check them; and the
    task's verdicts, so a study can be read from manifests alone."""
    return _json(
        {
            "schema_version": DOCUMENT_SCHEMA_VERSION,
            "task_id": task.task.id,
            "trace_id": task.trace_id,
            "verdicts": verdicts,
            "primary_result": primary,
            "created_at": utcnow(),
            "files": [
                {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                for name, data in sorted(files.items())
            ],
        }
    )


def render(task: TaskSnapshot, ending: Ending, services: list[StagedService]) -> RenderedResult:
    """All files of the task's result folder, manifest included."""
    services = sorted(services, key=lambda staged: staged.service)
    document = primary_document(task, ending, services)
    name = primary_name(task)
    files = {name: _json(document)}
    for staged in services:
        files[f"services/{staged.service}.json"] = _json(_service_document(staged))
    if ending.app is not None:
        files[APP_RECORD_NAME] = _json(ending.app)
    logs = [log for log in map(_service_sarif, services) if log is not None]
    files[SARIF_NAME] = _json(merge_logs(logs))
    files[MANIFEST_NAME] = manifest(task, name, files, ending.verdicts)
    summary = document["summary"]
    return RenderedResult(
        files=files,
        findings_count=summary["total_findings"],
        severity_breakdown=summary["severity_breakdown"],
    )
