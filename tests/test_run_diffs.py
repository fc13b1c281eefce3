"""Run diffs end to end on the real stack (gateway, orchestrator, static analyzer, persister as processes): two runs
of one app with a flaw added between them; the diff shows exactly that flaw as new, and `assay analyze --wait
--fail-on high` exits 0 on the clean app and 1 once the flaw is there."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import Stack, one_app_stack, run_assay

MODEL, APP = "study-model", 1

CLEAN = '''"""A small app with one low finding (an assert) and nothing worse."""


def greet(name: str) -> str:
    assert name
    return f"hello {name}"
'''

FLAW = """import hashlib


def password_hash(password: str) -> str:
    return hashlib.md5(password.encode()).hexdigest()


"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with one_app_stack(tmp_path_factory.mktemp("diffs"), MODEL, APP, CLEAN) as stack:
        yield stack


assay = run_assay


def analyze(stack: Stack, *extra: str) -> subprocess.CompletedProcess[str]:
    return assay(
        stack, "analyze", MODEL, str(APP), "--type", "security", "--tools", "bandit", "--wait", *extra
    )


def test_a_flaw_added_between_two_runs_is_exactly_what_is_new_and_fails_the_gate(stack: Stack) -> None:
    clean = analyze(stack, "--fail-on", "high")
    assert clean.returncode == 0, clean.stderr + stack.log_tail()
    first = clean.stdout.splitlines()[0]

    app_py = Path(stack.env["ASSAY_APPS_DIR"]) / MODEL / f"app{APP}" / "backend" / "app.py"
    app_py.write_text(FLAW + CLEAN)  # the assert moves down: still the same finding
    flawed = analyze(stack, "--fail-on", "high", "--new-only")
    second = flawed.stdout.splitlines()[0]

    assert flawed.returncode == 1, flawed.stderr + stack.log_tail()
    assert f"1 new finding of severity high or worse since {first}" in flawed.stderr
    by_default = json.loads(assay(stack, "diff", second, "--json").stdout)
    named = json.loads(assay(stack, "diff", second, first, "--json").stdout)
    assert by_default == named
    assert named["against"] == first
    [new] = named["new"]
    assert (new["tool"], new["rule_id"], new["severity"], new["line"]) == ("bandit", "B324", "high", 5)
    assert named["fixed"] == []
    assert named["unchanged"] == 1  # the assert, found on another line
    assert named["new_by_severity"]["high"] == 1

    text = assay(stack, "diff", second)
    assert text.returncode == 0
    assert f"{second} against {first}: 1 new, 0 fixed, 1 unchanged" in text.stdout
    assert "B324" in text.stdout


def test_diff_of_an_unknown_task_exits_1_with_the_gateways_reason(stack: Stack) -> None:
    result = assay(stack, "diff", "task_ffffffffffff")

    assert result.returncode == 1
    assert "task task_ffffffffffff not found" in result.stderr


def test_fingerprints_are_compared_as_multisets() -> None:
    from services.gateway.api.tasks.diffs import diff_findings
    from services.gateway.schemas import FindingView

    def view(fingerprint: str, line: int) -> FindingView:
        return FindingView(
            service="static", tool="t", rule_id="r", severity="low", category="quality", message="m",
            path="a.py", line=line, column=None, end_line=None, cwe=None, help_url=None,
            fingerprint=fingerprint, extra={},
        )  # fmt: skip

    previous = [view("a", 1), view("b", 2), view("b", 3)]
    current = [view("a", 5), view("a", 6), view("b", 7)]

    new, fixed, unchanged = diff_findings(current, previous)

    assert [(f.fingerprint, f.line) for f in new] == [("a", 6)]
    assert [(f.fingerprint, f.line) for f in fixed] == [("b", 3)]
    assert unchanged == 2
