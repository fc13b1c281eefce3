"""The suite's tiers (tests/support/tiers.py), seen by collecting real test modules in a pytest of their own: a test
lands in the stack tier by what it uses, without a mark of its own, and tests sharing a module's stack form one
xdist group per database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Collects the modules named on the command line and prints, per test, whether it is `stack` and its xdist group.
COLLECT = """
import json, sys
import pytest

class Report:
    def pytest_collection_finish(self, session):
        seen = {}
        for item in session.items:
            group = item.get_closest_marker("xdist_group")
            seen[item.nodeid] = [item.get_closest_marker("stack") is not None, group.args[0] if group else None]
        print("TIERS " + json.dumps(seen))

code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *sys.argv[1:]], plugins=[Report()])
sys.exit(int(code))
"""


MODULES = (
    "tests/test_dashboard.py",
    "tests/test_cli_supervisor.py",
    "tests/test_analyzer_base.py",
    "tests/test_faults.py",
)


@pytest.fixture(scope="module")
def tiers() -> dict[str, tuple[bool, str | None]]:
    """Per test of MODULES: (in the stack tier, its xdist group), as a pytest of their own collects them."""
    done = subprocess.run(
        [sys.executable, "-c", COLLECT, *MODULES], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("TIERS "))
    return {node: (stack, group) for node, (stack, group) in json.loads(line.removeprefix("TIERS ")).items()}


def test_a_test_is_in_the_stack_tier_by_what_it_uses(tiers: dict[str, tuple[bool, str | None]]) -> None:
    dashboard, supervisor = "tests/test_dashboard.py::", "tests/test_cli_supervisor.py::"
    # Chromium (through a module-scoped Stack, and through Chromium's flags alone) is the stack tier ...
    assert tiers[dashboard + "test_the_dashboard_shows_a_task_completing_live_and_its_grouped_findings"][0]
    assert tiers[dashboard + "test_the_comparison_page_draws_each_chart_beside_a_table_of_its_numbers"][0]
    # ... the in-process gateway beside them in the same module is not.
    assert not tiers[dashboard + "test_the_page_and_its_files_are_public_and_hold_no_data"][0]
    # The supervisor's Child reached from the test's body; `assay up` by its own mark.
    assert tiers[supervisor + "test_a_child_that_dies_is_restarted_after_1_then_2_seconds"][0]
    assert tiers[supervisor + "test_up_starts_the_stack_stops_it_on_sigint_and_restarts_on_the_same_data"][0]
    # An analyzer served in this test process is the fast tier.
    base = [stack for node, (stack, _) in tiers.items() if node.startswith("tests/test_analyzer_base.py")]
    assert base and not any(base)


def test_the_fault_suite_is_stack_and_runs_as_one_group_per_database(
    tiers: dict[str, tuple[bool, str | None]],
) -> None:
    faults = {node: tier for node, tier in tiers.items() if node.startswith("tests/test_faults.py")}
    assert faults and all(stack for stack, _group in faults.values())
    groups = {group for _stack, group in faults.values()}
    assert groups == {"tests/test_faults.py-database=SQLite", "tests/test_faults.py-database=PostgreSQL"}
    for node, (_stack, group) in faults.items():
        assert group is not None and group.rsplit("=", 1)[1] in node  # each test in its database's group


SHARED_MODULE = """
import os
import pytest

@pytest.fixture(scope="module")
def shared():
    with open("setups.txt", "a") as record:
        record.write(os.environ.get("PYTEST_XDIST_WORKER", "none") + "\\n")

@pytest.mark.parametrize("n", range(8))
def test_uses_the_shared_fixture(n, shared):
    pass
"""


def test_tests_sharing_a_module_fixture_run_on_one_worker_so_it_is_set_up_once(tmp_path: Path) -> None:
    """The groups are only marks: pytest-xdist's loadgroup must honour them (pytest 9.2 changed what it relies on, and
    every shared fixture was then set up on each worker, silently)."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.support.tiers"]\n')
    (tmp_path / "test_shared.py").write_text(SHARED_MODULE)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert len((tmp_path / "setups.txt").read_text().split()) == 1
