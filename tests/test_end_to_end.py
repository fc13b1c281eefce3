"""The whole path, real, end to end: HTTP → gateway → JetStream → orchestrator → static analyzer (WebSocket)
→ result events → persister → SQLite and the result folder, with one trace across all of it."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.wire.catalog import TOOLS_BY_SERVICE
from tests.support.contract import PRIMARY_KEYS, RESULTS_KEYS, SUMMARY_KEYS
from tests.support.stack import Stack, run_assay
from tests.support.tool_outputs import direct_counts_by_rule

REPO = Path(__file__).resolve().parent.parent
APPS = REPO / "generated" / "apps"
MODEL, APP = "openai_codex-mini", 1


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("e2e"), apps_dir=APPS, analyzers={"static": 1})
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def finished(stack: Stack) -> dict[str, Any]:
    """One static analysis of a sample app, run to its end."""
    task_id = stack.submit(model_slug=MODEL, app_number=APP, analysis_type="static")
    return stack.wait_terminal(task_id)


def query(stack: Stack, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(stack.database_file) as db:
        return db.execute(sql, params).fetchall()


def test_task_row_is_completed_and_names_its_folder(stack: Stack, finished: dict[str, Any]) -> None:
    [(status, result_dir, trace_id)] = query(
        stack, "select status, result_dir, trace_id from tasks where task_id = ?", finished["task_id"]
    )
    assert status == "completed", stack.log_tail()
    assert (stack.results_dir / result_dir).is_dir()
    assert len(trace_id) == 32


def test_result_folder_holds_every_file_and_key(stack: Stack, finished: dict[str, Any]) -> None:
    task_id = finished["task_id"]
    folder = stack.results_dir / finished["result_dir"]
    assert folder.parent == stack.results_dir / MODEL / f"app{APP}"
    assert folder.name.startswith(f"task_static_{task_id.removeprefix('task_')}_")
    primary = folder / f"{MODEL}_app{APP}_{task_id}.json"
    document = json.loads(primary.read_text())
    assert PRIMARY_KEYS <= document.keys()
    assert RESULTS_KEYS <= document["results"].keys()
    assert SUMMARY_KEYS <= document["summary"].keys()
    assert (
        document["summary"]["total_findings"]
        == len(document["results"]["findings"])
        == finished["findings_count"]
    )
    sarif = json.loads((folder / "consolidated.sarif.json").read_text())
    assert sarif["version"] == "2.1.0"
    assert sum(len(run["results"]) for run in sarif["runs"]) == finished["findings_count"]
    assert (folder / "services" / "static.json").is_file()

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["trace_id"] == document["trace_id"] == finished["trace_id"]
    listed = {entry["path"]: entry for entry in manifest["files"]}
    on_disk = {
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json"
    }
    assert set(listed) == on_disk
    for path, entry in listed.items():
        data = (folder / path).read_bytes()
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert not list(folder.parent.glob(".tmp-*")), "a temporary folder was left behind"


@pytest.mark.parametrize("tool", TOOLS_BY_SERVICE["static"])
def test_persisted_findings_equal_what_the_tool_reports_directly(
    stack: Stack, finished: dict[str, Any], tool: str
) -> None:
    [(status, command, reason)] = query(
        stack,
        "select status, command, reason from tool_runs where task_id = ? and tool = ?",
        finished["task_id"],
        tool,
    )
    if tool in ("bandit", "ruff"):
        assert status == "success", reason
    if status != "success":
        pytest.skip(f"{tool} did not run here: {status} ({reason})")
    persisted = dict(
        query(
            stack,
            "select rule_id, count(*) from findings where task_id = ? and tool = ? group by rule_id",
            finished["task_id"],
            tool,
        )
    )
    direct = direct_counts_by_rule(tool, json.loads(command), APPS / MODEL / f"app{APP}")
    assert persisted == direct
    if tool in ("bandit", "ruff", "semgrep", "pylint", "detect-secrets"):
        assert sum(direct.values()) > 0, f"{tool} found nothing on a sample app with known flaws"


def test_one_trace_spans_every_service_with_no_orphan(stack: Stack, finished: dict[str, Any]) -> None:
    trace_id = finished["trace_id"]
    spans: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    needed = {"gateway", "orchestrator", "analyzer-static", "persister"}
    while time.monotonic() < deadline:  # span files are flushed by batch processors every half second
        spans = [
            span
            for file in stack.trace_dir.glob("*.jsonl")
            for span in map(json.loads, file.read_text().splitlines())
            if span["trace_id"] == trace_id
        ]
        if needed <= {span["service"] for span in spans} and any(
            span["service"] == "persister" and span["name"].endswith(".completed") for span in spans
        ):
            break
        time.sleep(0.25)
    services = {span["service"] for span in spans}
    assert needed <= services, services
    ids = {span["span_id"] for span in spans}
    roots = [span for span in spans if span["parent_span_id"] is None]
    orphans = [span for span in spans if span["parent_span_id"] and span["parent_span_id"] not in ids]
    assert len(roots) == 1 and roots[0]["service"] == "gateway", roots
    assert orphans == []


def spans_of(
    stack: Stack, trace_ids: set[str], complete: Callable[[list[dict[str, Any]]], bool]
) -> list[Any]:
    """The spans of those traces in the stack's span files, once `complete` says all are there (files are
    flushed by batch processors every half second)."""
    deadline = time.monotonic() + 15
    while True:
        spans = [
            span
            for file in stack.trace_dir.glob("*.jsonl")
            for span in map(json.loads, file.read_text().splitlines())
            if span["trace_id"] in trace_ids
        ]
        if complete(spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.25)


def test_a_cli_batch_gives_every_task_its_own_complete_trace_linked_to_the_batch(stack: Stack) -> None:
    queued = run_assay(stack, "batch", "--models", MODEL, "--type", "static", "--tools", "bandit", "--wait")
    assert queued.returncode == 0, queued.stderr + stack.log_tail()
    batch_id = queued.stdout.strip().splitlines()[0]
    batch = httpx.get(f"{stack.gateway_url}/api/batches/{batch_id}", headers=stack.headers, timeout=10).json()
    task_ids = [task["task_id"] for task in batch["tasks"]]
    assert len(task_ids) == 2  # the model's two sample apps
    traces = {task_id: stack.task(task_id)["trace_id"] for task_id in task_ids}
    assert all(traces.values()) and len(set(traces.values())) == len(task_ids)  # one trace each

    needed = {"gateway", "orchestrator", "analyzer-static", "persister"}

    def every_trace_complete(spans: list[dict[str, Any]]) -> bool:
        return all(
            needed <= {span["service"] for span in spans if span["trace_id"] == trace_id}
            and any(span["name"].endswith(".completed") for span in spans if span["trace_id"] == trace_id)
            for trace_id in traces.values()
        )

    spans = spans_of(stack, set(traces.values()), every_trace_complete)
    for task_id, trace_id in traces.items():
        own = [span for span in spans if span["trace_id"] == trace_id]
        assert needed <= {span["service"] for span in own}, (task_id, {span["service"] for span in own})
        ids = {span["span_id"] for span in own}
        [root] = [span for span in own if span["parent_span_id"] is None]
        assert [span for span in own if span["parent_span_id"] and span["parent_span_id"] not in ids] == []
        assert root["name"] == "queue batch task" and root["service"] == "gateway"
        assert root["attributes"]["assay.batch_id"] == batch_id
        assert root["attributes"]["assay.task_id"] == task_id
        [link] = root["links"]
        assert link["attributes"]["assay.link.kind"] == "batch"
        [batch_span] = spans_of(stack, {link["trace_id"]}, lambda found: bool(found))
        assert (
            batch_span["span_id"] == link["span_id"]
            and batch_span["attributes"]["assay.batch_id"] == batch_id
        )
        shown = run_assay(stack, "trace", task_id)
        assert shown.returncode == 0, shown.stderr
        assert (
            "queue batch task  [gateway]" in shown.stdout
            and f"(batch: trace {link['trace_id']})" in shown.stdout
        )
