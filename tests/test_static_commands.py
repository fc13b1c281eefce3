"""Every static tool's recorded command, re-run by hand in the app folder, yields the findings the analyzer reported.

The counts per rule id are read from each tool's own output by parsers written here, independently of the tool
modules, and compared with the analyzer's normalized findings: equal, rule by rule.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from test_static_support import COMPLEX_MODULE, copy_sample, run_in_process

from services.analyzers.static.analyzer import build_analyzer
from shared.catalog import TOOLS_BY_SERVICE
from shared.protocol import ServiceResult


def bandit_counts(out: str) -> Counter[str]:
    return Counter(issue["test_id"] for issue in json.loads(out)["results"])


def ruff_counts(out: str) -> Counter[str]:
    return Counter(item["code"] for item in json.loads(out))


def pylint_counts(out: str) -> Counter[str]:
    return Counter(message["symbol"] for message in json.loads(out)["messages"])


def mypy_counts(out: str) -> Counter[str]:
    items = [json.loads(line) for line in out.splitlines() if line.strip()]
    return Counter(item["code"] or ("note" if item["severity"] == "note" else "misc") for item in items)


def vulture_counts(out: str) -> Counter[str]:
    kinds = Counter()
    for line in out.splitlines():
        match = re.match(r"^.+?:\d+: (.+) \(\d+% confidence", line)
        if match:  # "unused import 'os'" → unused-import, "unreachable code after 'return'" → unreachable-code
            words = re.sub(r"'[^']*'", " ", match[1]).split()
            kinds["-".join(word for word in words if word != "after")] += 1
    return kinds


def radon_counts(out: str) -> Counter[str]:
    return Counter(
        f"complexity-{block['rank']}"
        for blocks in json.loads(out).values() if isinstance(blocks, list)
        for block in blocks if block["type"] != "class" and block["rank"] in "DEF"
    )


def detect_secrets_counts(out: str) -> Counter[str]:
    return Counter(hit["type"] for hits in json.loads(out)["results"].values() for hit in hits)


def eslint_counts(out: str) -> Counter[str]:
    return Counter(message["ruleId"] or "parse-error" for file in json.loads(out) for message in file["messages"])


def semgrep_counts(out: str) -> Counter[str]:
    return Counter(result["check_id"].rsplit(".", 1)[-1] for result in json.loads(out)["results"])


def pip_audit_counts(out: str) -> Counter[str]:
    return Counter(vuln["id"] for dependency in json.loads(out)["dependencies"] for vuln in dependency.get("vulns", []))


def npm_audit_counts(out: str) -> Counter[str]:
    counts = Counter()
    for package in json.loads(out).get("vulnerabilities", {}).values():
        advisories = [via for via in package["via"] if isinstance(via, dict)]
        for advisory in advisories:
            last = advisory.get("url", "").rstrip("/").rsplit("/", 1)[-1]
            counts[last if last.startswith("GHSA-") else f"npm-{advisory.get('source')}"] += 1
        if not advisories:
            counts["vulnerable-dependency"] += 1
    return counts


COUNTERS: dict[str, Callable[[str], Counter[str]]] = {
    "bandit": bandit_counts, "ruff": ruff_counts, "pylint": pylint_counts, "mypy": mypy_counts,
    "vulture": vulture_counts, "radon": radon_counts, "detect-secrets": detect_secrets_counts,
    "eslint": eslint_counts, "semgrep": semgrep_counts, "pip-audit": pip_audit_counts, "npm-audit": npm_audit_counts,
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sample app1 plus a module with D- and E-ranked functions, so radon has findings to compare too."""
    folder = copy_sample(tmp_path_factory.mktemp("apps"))
    (folder / "backend" / "pricing.py").write_text(COMPLEX_MODULE)
    return folder


@pytest.fixture(scope="module")
def pristine(app: Path) -> list[str]:
    """Every path in the app folder (hidden and cache folders too) before any tool ran."""
    return sorted(str(path.relative_to(app)) for path in app.rglob("*"))


@pytest.fixture(scope="module")
def result(app: Path, pristine: list[str]) -> ServiceResult:
    return asyncio.run(run_in_process(build_analyzer().tools, app))


def test_every_tool_has_an_independent_counter() -> None:
    assert set(COUNTERS) == set(TOOLS_BY_SERVICE["static"])


@pytest.mark.parametrize("tool", TOOLS_BY_SERVICE["static"])
def test_rerunning_the_recorded_command_gives_the_same_findings_per_rule(
    tool: str, app: Path, result: ServiceResult
) -> None:
    record = next(run for run in result.tools if run.tool == tool)
    if record.status != "success":
        pytest.skip(f"{tool} did not run here: {record.status} ({record.reason})")
    rerun = subprocess.run(record.command, cwd=app, capture_output=True, text=True, timeout=120, check=False)
    expected = COUNTERS[tool](rerun.stdout)
    reported = Counter(finding.rule_id for finding in result.findings if finding.tool == tool)
    assert rerun.returncode == record.exit_code
    assert reported == expected
    assert record.findings_count == sum(reported.values())
    assert record.files_analyzed > 0
    if tool == "radon":  # the module added to the app must be what radon ranks
        assert reported == Counter({"complexity-D": 1, "complexity-E": 1})


def test_tools_leave_the_app_folder_as_they_found_it(app: Path, pristine: list[str], result: ServiceResult) -> None:
    """No cache, stats or report file lands in the analyzed app (after the analyzer's run and the re-runs above)."""
    assert sorted(str(path.relative_to(app)) for path in app.rglob("*")) == pristine
