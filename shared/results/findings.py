"""Normalized findings and tool runs: one shape for every tool of every analyzer."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

import msgspec

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low", "info")

# partial: the tool ran to the end but says it skipped some of what it was asked (rules that timed out, files it
# could not read, packages it could not resolve); its reason says what. reused: a run whose every input was unchanged,
# so its stored output stands for it.
ToolStatus = Literal["success", "reused", "partial", "failed", "skipped", "timeout", "cancelled"]
# A tool that ran all of its work to the end.
COMPLETED_STATUSES: frozenset[ToolStatus] = frozenset({"success", "reused"})

# Where the code a finding points at comes from: scores, issue counts and the default views count `app` code only.
# No analyzer sets another origin yet (the static tools leave dependencies and bundles out of what they analyze,
# services/analyzers/static/tools/source.py), so every finding is `app`, as one about the running app always is.
Origin = Literal["app", "vendored", "generated", "minified", "test"]


class Exchange(msgspec.Struct, frozen=True, kw_only=True):
    """One HTTP request a check sent to the running app and what came back: enough to send it again.

    `path` is relative to the base URL of the app's part named `target` (`backend`, `frontend`), so neither the
    sandbox's host nor its port is ever part of a stored finding.
    """

    method: str
    path: str  # path and query, starting with `/`
    target: str = "backend"
    headers: dict[str, str] = {}  # the request headers the check set (never an Authorization of the caller's)
    body: str | None = None
    status: int | None = None  # of the answer; None when none came
    response_headers: dict[str, str] = {}  # those that matter to the proof
    response_excerpt: str = ""  # the part of the answer's body that matters, cut short
    elapsed_s: float | None = None


class Proof(msgspec.Struct, frozen=True, kw_only=True):
    """Why a finding about the running app is real: the exact exchanges in the order sent, the excerpt of an answer
    that proves it, and one sentence on why it does. A finding without a proof is at most `low`."""

    exchanges: list[Exchange]
    evidence: str
    why: str


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One problem a tool reported, on the one severity scale."""

    tool: str
    rule_id: str
    severity: Severity
    message: str
    path: str | None = None  # relative to the app folder (or a URL for HTTP tools)
    line: int | None = None
    column: int | None = None
    end_line: int | None = None
    category: str = "quality"  # security, quality, type, complexity, dead-code, secrets, dependency, http, performance, requirements
    cwe: str | None = None
    help_url: str | None = None
    fingerprint: str = ""
    extra: dict[str, Any] = {}
    origin: Origin = "app"
    proof: Proof | None = None  # set by checks that attacked the running app and confirmed the flaw


class ToolRun(msgspec.Struct, frozen=True, kw_only=True):
    """What one tool did in one run: enough for anyone to re-run `command` and compare."""

    tool: str
    status: ToolStatus
    version: str | None = None
    command: list[str] = []
    exit_code: int | None = None
    duration_s: float = 0.0
    files_analyzed: int = 0
    findings_count: int = 0
    reason: str | None = None  # why it was skipped or failed
    # The task whose stored run this one reused (status `reused`; or `success` when only some files were reused).
    reused_from: str | None = None
    # of `files_analyzed`, how many were not analyzed again (their inputs were unchanged)
    files_reused: int = 0


_SPACE = re.compile(r"\s+")


def normalize_source_line(text: str) -> str:
    """Collapse white space so that re-indentation does not change a fingerprint."""
    return _SPACE.sub(" ", text).strip()


def fingerprint(tool: str, rule_id: str, path: str | None, source_line: str, message: str = "") -> str:
    """Stable identity of a finding across runs and line shifts.

    Hash of tool, rule id, relative path and the normalized source line (no line number). Where a finding has no
    source line (an HTTP tool, say) the message stands in for it.
    """
    anchor = normalize_source_line(source_line) or normalize_source_line(message)
    material = "\x1f".join((tool, rule_id, path or "", anchor))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def with_fingerprints(findings: list[Finding]) -> list[Finding]:
    """The findings, each without a fingerprint given one (from its message), so de-duplication works for all."""
    return [
        finding
        if finding.fingerprint
        else msgspec.structs.replace(
            finding, fingerprint=fingerprint(finding.tool, finding.rule_id, finding.path, "", finding.message)
        )
        for finding in findings
    ]


def severity_breakdown(findings: list[Finding]) -> dict[str, int]:
    """Counts per severity, every level present (zero where none)."""
    counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        counts[finding.severity] += 1
    return counts


def findings_by_tool(findings: list[Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.tool] = counts.get(finding.tool, 0) + 1
    return counts
