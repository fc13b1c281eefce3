"""`assay analyze --wait` shows progress per analyzer from the task's events, run as a subprocess against the real
stack (gateway, orchestrator, static analyzer, persister as processes) with its output not a terminal."""

from __future__ import annotations

import io
import json
import re
import subprocess
from collections.abc import Iterator

import pytest

from services.cli.analyzer_view import AnalyzerView, Screen
from tests.support.stack import Stack, one_app_stack, run_assay

MODEL, APP = "progress-model", 1

APP_PY = """import subprocess


def run(command: str) -> int:
    return subprocess.call(command, shell=True)
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with one_app_stack(tmp_path_factory.mktemp("progress"), MODEL, APP, APP_PY) as stack:
        yield stack


def analyze(stack: Stack, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_assay(
        stack, "analyze", MODEL, str(APP), "--type", "static", "--tools", "bandit,ruff", "--wait", *extra
    )


def test_wait_prints_a_line_per_analyzer_as_it_changes_and_the_final_status(stack: Stack) -> None:
    done = analyze(stack)

    assert done.returncode == 0, done.stderr + stack.log_tail()
    task_id = done.stdout.splitlines()[0]
    lines = done.stderr.splitlines()
    assert "\033[" not in done.stderr  # not a terminal: plain lines, no cursor movement
    assert re.match(rf"{task_id}  pending\s+0\.0%$", lines[0]), lines
    analyzer_lines = [line for line in lines if line.startswith("  static  ")]
    assert analyzer_lines[0] == "  static  waiting", lines
    ended = re.fullmatch(r"  static  success  (\d+) findings", analyzer_lines[-1])
    assert ended is not None, lines
    assert int(ended.group(1)) >= 1  # bandit's B602 at least
    assert len(set(analyzer_lines)) == len(analyzer_lines)  # a line is printed again only when it changes
    assert re.fullmatch(rf"{task_id}  completed\s+100\.0%", lines[-1]), lines
    assert "completed" in done.stdout  # the task as it ended, rendered after the view


def test_wait_with_json_prints_only_the_task(stack: Stack) -> None:
    done = analyze(stack, "--json")

    assert done.returncode == 0, done.stderr + stack.log_tail()
    assert done.stderr == ""
    task = json.loads(done.stdout)
    assert task["status"] == "completed" and task["findings_count"] >= 1


class Terminal(io.StringIO):
    """Text output that says it is a terminal, as a user's shell is."""

    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_view_is_redrawn_in_place() -> None:
    view = AnalyzerView("task_0123456789ab")
    terminal = Terminal()
    screen = Screen(terminal)
    screen.draw(view.lines())
    view.apply({"kind": "started", "services": ["static", "dynamic"]})
    screen.draw(view.lines())
    view.apply({"kind": "service", "service": "static", "status": "cancelled", "result": {"findings": [{}]}})
    screen.draw(view.lines())
    out = terminal.getvalue()

    # each redraw moves the cursor back over the lines drawn before and clears below
    assert out.count("\033[1F\033[J") == 1 and out.count("\033[3F\033[J") == 1
    assert out.endswith(
        "task_0123456789ab  running     0.0%\n  static   cancelled  1 findings\n  dynamic  waiting\n"
    )
