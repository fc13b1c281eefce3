"""Every static tool's recorded command, re-run by hand in the app folder, yields the findings the analyzer reported.

The counts per rule id are read from each tool's own output by parsers written here, independently of the tool
modules, and compared with the analyzer's normalized findings: equal, rule by rule.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from services.analyzers.static.analyzer import build_analyzer
from shared.wire.catalog import TOOLS_BY_SERVICE
from shared.wire.protocol import ServiceResult
from tests.support.static import COMPLEX_MODULE, copy_sample, run_in_process
from tests.support.tool_outputs import COUNTERS


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


def test_tools_leave_the_app_folder_as_they_found_it(
    app: Path, pristine: list[str], result: ServiceResult
) -> None:
    """No cache, stats or report file lands in the analyzed app (after the analyzer's run and the re-runs above)."""
    assert sorted(str(path.relative_to(app)) for path in app.rglob("*")) == pristine
