"""The flaw corpus as the static tests and the static corpus benchmark scan it: the static analyzer's security tools
run in-process over a pair's app folders, and the two judgements of a pair. (No tests here.)

- **found**: each static sink of the pair's flaw.json has a finding of the sink's weakness family in its file whose
  lines (from `line` to `end_line`, and for a taint finding the lines its value came through) include the sink's.
- **silent twin**: the fixed app has no finding of those families anywhere, `info` audit notes aside (an
  "imported subprocess" says nothing about a flaw).
"""

from __future__ import annotations

import asyncio

import msgspec

from services.analyzers.base.cpu_budget import CpuBudget
from services.analyzers.base.runner import run_tools
from services.analyzers.base.tool import Tool
from services.analyzers.static.analyzer import build_analyzer
from shared.operations.config import load_settings
from shared.results.findings import Finding
from shared.results.issue_groups import kind
from shared.results.rule_table import canonical_cwe
from shared.results.weakness_families import family_of
from shared.wire.protocol import AnalyzeFrame, ServiceResult
from tests.support.corpus import CORPUS, Flaw, StaticSink
from tests.support.static import make_job

SECURITY_TOOLS = ("bandit", "ruff", "semgrep", "eslint", "detect-secrets")
TASK_DEADLINE_S: float = next(
    f.default for f in msgspec.structs.fields(AnalyzeFrame) if f.name == "deadline_s"
)


def family(cwe: str) -> str:
    """The family id of a CWE (the issue groups' kind), as flaw.json names only the CWE."""
    named = canonical_cwe(cwe) or cwe
    found = family_of(named)
    return found.id if found else named


def security_tools() -> list[Tool]:
    """The static analyzer's security tools, as one analyzer holds them (a coalescing tool's runs meet in them)."""
    return [tool for tool in build_analyzer().tools if tool.name in SECURITY_TOOLS]


async def scan(pair: str, number: int, tools: list[Tool], cpu_budget: CpuBudget) -> ServiceResult:
    """`tools` over `<pair>/app<number>`, with a task's default deadline (a scan queued behind the whole corpus on a
    loaded machine must not run out of time before its tools start)."""
    job = make_job(CORPUS / pair / f"app{number}", deadline_s=TASK_DEADLINE_S, cpu_budget=cpu_budget)
    return await run_tools("static", tools, job)


async def scan_all(names: list[str]) -> dict[tuple[str, int], ServiceResult]:
    """Both apps of every pair in `names`, scanned at once by one set of tools on one CPU budget, as one analyzer
    runs a study's tasks: a tool that coalesces runs (semgrep) starts once for many apps. Each app's result is its
    own run's."""
    budget = CpuBudget(load_settings({}).tool_concurrency)
    tools = security_tools()
    keys = [(pair, number) for pair in names for number in (1, 2)]
    results = await asyncio.gather(*(scan(pair, number, tools, budget) for pair, number in keys))
    return dict(zip(keys, results, strict=True))


def covers(finding: Finding, sink: StaticSink) -> bool:
    if finding.path != sink.path or finding.line is None or kind(finding) != family(sink.cwe):
        return False
    lines = set(range(finding.line, max(finding.line, finding.end_line or finding.line) + 1))
    lines.update(finding.extra.get("flow_lines", []))
    return sink.line in lines


def missed(spec: Flaw, findings: list[Finding]) -> list[StaticSink]:
    """The sinks of the flaw no finding covers."""
    return [sink for sink in spec.static if not any(covers(finding, sink) for finding in findings)]


def twin_noise(spec: Flaw, findings: list[Finding]) -> list[Finding]:
    """Findings on the fixed twin of the families its flaw is about (`info` notes aside)."""
    wanted = {family(sink.cwe) for sink in spec.static}
    return [finding for finding in findings if finding.severity != "info" and kind(finding) in wanted]
