"""Trace hygiene against the real stack: `assay trace` run from another folder prints the task's trace and only
it (the CLI's own polling leaves no trace), an unknown task exits 1, tool spans split waiting from running, and
every service's log lines name that service and carry span ids."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.telemetry.span_files import span_files, trace_ids_of_task
from tests.support.stack import Stack

REPO = Path(__file__).resolve().parent.parent
APPS = REPO / "generated" / "apps"
TOOLS = ["bandit", "radon"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("hygiene"), apps_dir=APPS, analyzers={"static": 1})
    stack.start()
    yield stack
    stack.stop()


def assay(stack: Stack, elsewhere: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it from `elsewhere`: it knows the gateway, not the stack's folders."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ASSAY_", "OTEL_"))}
    env["ASSAY_GATEWAY_URL"] = stack.gateway_url
    env["ASSAY_TOKEN"] = stack.token
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=elsewhere,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def analyzed(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One task submitted and followed to its end with `assay analyze --wait` (which polls the gateway)."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    result = assay(
        stack,
        elsewhere,
        "analyze",
        "openai_codex-mini",
        "1",
        "--type",
        "static",
        "--tools",
        ",".join(TOOLS),
        "--wait",
    )
    assert result.returncode == 0, result.stderr + stack.log_tail()
    task_id = result.stdout.splitlines()[0]
    stack.stop()  # flushes every service's last spans into the files
    stack.start()
    return task_id, elsewhere


def test_assay_trace_from_another_folder_prints_only_the_tasks_trace(
    stack: Stack, analyzed: tuple[str, Path]
) -> None:
    task_id, elsewhere = analyzed
    with sqlite3.connect(stack.database_file) as db:  # not over HTTP: an untraced call would start a trace
        [(trace_id,)] = db.execute("select trace_id from tasks where task_id = ?", (task_id,)).fetchall()

    result = assay(stack, elsewhere, "trace", task_id)

    assert result.returncode == 0, result.stderr
    headers = [line for line in result.stdout.splitlines() if line.startswith("trace ")]
    assert len(headers) == 1
    assert headers[0].startswith(f"trace {trace_id}: ")
    assert headers[0].endswith("across analyzer-static, gateway, orchestrator, persister")
    # The polling of `analyze --wait` and of `assay trace` itself left no trace of the task's id.
    assert trace_ids_of_task(span_files(stack.trace_dir), task_id) == [trace_id]


def test_assay_trace_of_an_unknown_task_exits_1(stack: Stack, analyzed: tuple[str, Path]) -> None:
    result = assay(stack, analyzed[1], "trace", "task_000000000000")

    assert result.returncode == 1
    assert "task_000000000000 not found" in result.stderr
    assert result.stdout == ""


def test_tool_spans_separate_waiting_for_a_cpu_slot_from_running(
    stack: Stack, analyzed: tuple[str, Path]
) -> None:
    task_id, elsewhere = analyzed
    result = assay(stack, elsewhere, "trace", task_id)
    lines = result.stdout.splitlines()
    for tool in TOOLS:
        [at] = [index for index, line in enumerate(lines) if line.strip().startswith(f"tool {tool}  ")]
        depth = len(lines[at]) - len(lines[at].lstrip())
        children = []
        for line in lines[at + 1 :]:
            if len(line) - len(line.lstrip()) <= depth:
                break
            children.append(line.strip().split("  [")[0])
        assert children[:2] == ["cpu slot wait", f"exec {tool}"], children


def log_entries(stack: Stack, name: str) -> list[dict[str, Any]]:
    entries = []
    for line in (stack.logs / f"{name}.log").read_text().splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    return entries


@pytest.mark.parametrize(
    ("log", "service"),
    [
        ("persister", "persister"),
        ("orchestrator", "orchestrator"),
        ("gateway", "gateway"),
        ("static-0", "static"),
    ],
)
def test_log_lines_name_their_own_service_and_carry_span_ids(
    stack: Stack, analyzed: tuple[str, Path], log: str, service: str
) -> None:
    task_id = analyzed[0]
    entries = log_entries(stack, log)
    assert entries
    assert {entry["service"] for entry in entries} == {service}
    traced = [entry for entry in entries if "trace_id" in entry]
    assert all(len(entry["span_id"]) == 16 for entry in traced)
    if log in ("persister", "orchestrator"):
        assert any(entry.get("task_id") == task_id and "span_id" in entry for entry in entries)
