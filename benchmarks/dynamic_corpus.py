"""Dynamic analyzer vs wapiti on the flaw corpus (per pair: 1 = flaw found on app1 and twin silent)

Every app of tests/corpus/apps gets a full dynamic analysis (every tool, wapiti included, fed Assay's surface),
started as Assay starts it (by the app runner, in its sandbox). Per pair,
`baseline` is wapiti's score and `assay` Assay's own checks': 1 when the pair's weakness (its CWE) is reported on the
vulnerable app and not on the fixed twin, 0.5 when the twin is reported too, 0 when the flaw is missed. Assay's
counts only findings with a proof; wapiti's only its vulnerabilities (not its HTTP 500 anomalies, given in the note).
The last rows: the wall time of one app's whole dynamic analysis, and Assay's proven findings of other weaknesses
on the twins (false alarms).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import Row
from services.analyzers.dynamic.scanner import wapiti_path
from shared.results.findings import Finding
from shared.results.rule_table import canonical_cwe
from shared.wire.catalog import TOOLS_BY_SERVICE
from shared.wire.protocol import ServiceResult
from tests.support.analyzers import start_analyzer, stop
from tests.support.apps import runner_settings
from tests.support.corpus import CORPUS, analyze, flaw, pairs

TOOLS = [tool for tool in TOOLS_BY_SERVICE["dynamic"] if tool != "endpoints"]
PARALLEL = 2


def _ours(result: ServiceResult, cwe: str) -> list[Finding]:
    return [f for f in result.findings if f.proof is not None and canonical_cwe(f.cwe) == canonical_cwe(cwe)]


def _wapiti(result: ServiceResult, cwe: str, rule_prefix: str = "wapiti-") -> list[Finding]:
    return [
        f for f in result.findings
        if f.tool == "wapiti" and f.rule_id.startswith(rule_prefix) and "anomaly" not in f.rule_id and canonical_cwe(f.cwe) == canonical_cwe(cwe)
    ]  # fmt: skip


def _score(found: bool, twin: bool) -> float:
    return 0.0 if not found else 0.5 if twin else 1.0


async def _measure(folder: Path) -> list[Row]:
    url, process = start_analyzer("dynamic", folder / "analyzer", apps_dir=CORPUS)
    work = Path(tempfile.mkdtemp(prefix="assay-apps-"))  # the sandbox user must reach it
    try:
        settings = runner_settings(folder, CORPUS, work)
        gate = asyncio.Semaphore(PARALLEL)
        walls: list[float] = []

        async def one(pair: str, app: int) -> ServiceResult:
            async with gate:
                started = time.monotonic()
                result = await analyze(url, settings, pair, app, TOOLS, timeout_s=600)
                walls.append(time.monotonic() - started)
                return result

        names = pairs("dynamic")
        results = await asyncio.gather(*(one(pair, app) for pair in names for app in (1, 2)))
    finally:
        stop(process)
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    false_alarms = 0
    for index, pair in enumerate(names):
        vulnerable, fixed = results[2 * index], results[2 * index + 1]
        cwe = flaw(pair).cwe
        ours = (bool(_ours(vulnerable, cwe)), bool(_ours(fixed, cwe)))
        theirs = (bool(_wapiti(vulnerable, cwe)), bool(_wapiti(fixed, cwe)))
        anomalies = sum(1 for f in vulnerable.findings if f.tool == "wapiti" and "anomaly" in f.rule_id)
        false_alarms += sum(
            1 for f in fixed.findings if f.proof is not None and f.severity in ("critical", "high")
        )
        note = f"{cwe}: assay {'found' if ours[0] else 'missed'}/{'twin flagged' if ours[1] else 'twin silent'}; wapiti {'found' if theirs[0] else 'missed'}/{'twin flagged' if theirs[1] else 'twin silent'}, {anomalies} HTTP-500 anomalies"
        rows.append(Row(pair, "score", _score(*theirs), _score(*ours), higher_is_better=True, note=note))
    rows.append(
        Row("wall time of one app's dynamic analysis, mean", "s", None, round(statistics.mean(walls), 1))
    )
    rows.append(Row("wall time of one app's dynamic analysis, max", "s", None, round(max(walls), 1)))
    rows.append(Row("proven high/critical findings on the fixed twins", "findings", None, false_alarms))
    return rows


def run() -> list[Row]:
    """The table; wapiti's column is empty when it is not installed (make install)."""
    if wapiti_path() is None:
        print("wapiti is not installed: its column stays empty")
    folder = Path(tempfile.mkdtemp(prefix="assay-bench-corpus-"))
    try:
        return asyncio.run(_measure(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
