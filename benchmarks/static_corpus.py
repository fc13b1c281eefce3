"""Static analyzer on the flaw corpus and the sample apps (found flaws, silent twins, findings per kLOC)

Every pair of tests/corpus/apps with a statically visible flaw (`static` in its flaw.json) is scanned by the static
analyzer's security tools, in-process: the pair counts as found when a finding of the flaw's weakness family lies on
one of its lines in `app1`, and its twin as silent when `app2` has no finding of that family anywhere. On the sample
apps (generated/apps) every static tool runs: findings per thousand lines of code (all findings, and those on `app`
code only) and the share of findings whose file is classified other than `app`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from benchmarks.common import Row
from services.analyzers.static.analyzer import build_analyzer
from shared.findings import Finding
from shared.weakness_families import weakness_of
from tests.support.corpus import CORPUS, flaw, pairs
from tests.support.static import SAMPLE_APPS, run_in_process

SECURITY_TOOLS = ("bandit", "ruff", "semgrep", "eslint", "detect-secrets")
CODE_SUFFIXES = (".py", ".js", ".mjs", ".cjs", ".jsx", ".html", ".jinja2", ".j2", ".sql")


def family(finding: Finding) -> str:
    named, found = weakness_of(finding.tool, finding.rule_id, finding.cwe)
    return found.id if found else named


def family_of_cwe(cwe: str) -> str:
    named, found = weakness_of("", "", cwe)
    return found.id if found else named


def _lines_of_code(app: Path) -> int:
    total = 0
    for path in app.rglob("*"):
        if path.is_file() and path.suffix in CODE_SUFFIXES and "node_modules" not in path.parts:
            total += sum(1 for line in path.read_text(errors="replace").splitlines() if line.strip())
    return total


async def _corpus() -> list[Row]:
    tools = [tool for tool in build_analyzer().tools if tool.name in SECURITY_TOOLS]
    rows: list[Row] = []
    found_total = silent_total = counted = 0
    for pair in pairs():
        spec = flaw(pair)
        if not spec.static:
            continue
        vulnerable = await run_in_process(tools, CORPUS / pair / "app1")
        fixed = await run_in_process(tools, CORPUS / pair / "app2")
        found = all(
            any(
                finding.path == sink.path
                and finding.line is not None
                and finding.line <= sink.line <= max(finding.line, finding.end_line or finding.line)
                and family(finding) == family_of_cwe(sink.cwe)
                for finding in vulnerable.findings
            )
            for sink in spec.static
        )
        wanted = {family_of_cwe(sink.cwe) for sink in spec.static}
        loud = sorted({f"{f.tool}:{f.rule_id}" for f in fixed.findings if family(f) in wanted})
        counted += 1
        found_total += found
        silent_total += not loud
        rows.append(
            Row(
                f"{pair}: found, twin silent",
                "pair",
                None,
                float(found) + (0.0 if loud else 1.0),
                True,
                f"found={found} twin={'silent' if not loud else ', '.join(loud)}",
            )
        )
    rows.append(Row("corpus: flaws found", "pairs", None, float(found_total), True, f"of {counted}"))
    rows.append(Row("corpus: twins silent", "pairs", None, float(silent_total), True, f"of {counted}"))
    return rows


async def _samples() -> list[Row]:
    tools = build_analyzer().tools
    findings: list[Finding] = []
    lines = 0
    for app in sorted(SAMPLE_APPS.glob("*/app*")):
        result = await run_in_process(tools, app)
        findings.extend(result.findings)
        lines += _lines_of_code(app)
    app_only = [finding for finding in findings if finding.origin == "app"]
    kloc = lines / 1000
    return [
        Row("samples: findings per kLOC", "findings/kLOC", None, len(findings) / kloc, False, f"{lines} lines"),
        Row("samples: app findings per kLOC", "findings/kLOC", None, len(app_only) / kloc, False, ""),
        Row(
            "samples: share not app code",
            "%",
            None,
            100 * (len(findings) - len(app_only)) / max(1, len(findings)),
            False,
            f"{len(findings) - len(app_only)} of {len(findings)}",
        ),
    ]


def run() -> list[Row]:
    return asyncio.run(_corpus()) + asyncio.run(_samples())
