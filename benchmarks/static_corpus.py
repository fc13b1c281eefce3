"""Static analyzer on the flaw corpus and the sample apps (found flaws, silent twins, findings per kLOC)

Every pair of tests/corpus/apps with a statically visible flaw (`static` in its flaw.json) is scanned by the static
analyzer's security tools, in-process, and judged as tests/support/static_corpus.py says: found when a finding of the
flaw's weakness family covers each of its lines in `app1`, the twin silent when `app2` has none of that family. On the sample
apps (generated/apps) every static tool runs: findings per thousand lines of code (all findings, and those on `app`
code only) and the share of findings whose file is classified other than `app`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from benchmarks.common import Row
from services.analyzers.static.analyzer import build_analyzer
from shared.results.findings import Finding
from tests.support.corpus import flaw, pairs
from tests.support.static import SAMPLE_APPS, run_in_process
from tests.support.static_corpus import missed, scan_all, twin_noise

CODE_SUFFIXES = (".py", ".js", ".mjs", ".cjs", ".jsx", ".html", ".jinja2", ".j2", ".sql")


def _lines_of_code(app: Path) -> int:
    total = 0
    for path in app.rglob("*"):
        if path.is_file() and path.suffix in CODE_SUFFIXES and "node_modules" not in path.parts:
            total += sum(1 for line in path.read_text(errors="replace").splitlines() if line.strip())
    return total


async def _corpus() -> list[Row]:
    rows: list[Row] = []
    found_total = silent_total = 0
    names = pairs("static")
    scans = await scan_all(names)
    for pair in names:
        spec = flaw(pair)
        vulnerable, fixed = scans[pair, 1], scans[pair, 2]
        found = not missed(spec, vulnerable.findings)
        loud = sorted({f"{f.tool}:{f.rule_id}" for f in twin_noise(spec, fixed.findings)})
        found_total += found
        silent_total += not loud
        note = f"found={found} twin={'silent' if not loud else ', '.join(loud)}"
        rows.append(Row(f"{pair}: found, twin silent", "pair", None, float(found) + (not loud), True, note))
    rows.append(Row("corpus: flaws found", "pairs", None, float(found_total), True, f"of {len(names)}"))
    rows.append(Row("corpus: twins silent", "pairs", None, float(silent_total), True, f"of {len(names)}"))
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
        Row(
            "samples: findings per kLOC", "findings/kLOC", None, len(findings) / kloc, False, f"{lines} lines"
        ),
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
