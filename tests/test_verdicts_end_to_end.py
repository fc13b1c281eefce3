"""The verdicts on real attacks, end to end: dynamic tasks on corpus pairs (a Flask one whose requirements.json
declares its endpoints, a FastAPI one that serves its OpenAPI document) run through a real stack (nats-server,
gateway, orchestrator, persister, the dynamic analyzer) whose orchestrator starts each app itself, in its sandbox.
The stored verdicts say the vulnerable app is exploitable, by its proven finding, and its fixed twin is not; that
both work as their documents promise; the task's API answer, result document and manifest agree. Then `assay replay`
sends the proof again through the gateway to the app Assay starts once more: the flaw holds, and once the app's code
is the twin's, at the same path, it no longer does.

Express pairs wait for the app runner's Node preparation."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from shared.results.findings import SEVERITIES
from shared.wire.catalog import TOOLS_BY_SERVICE
from tests.support.apps import needs_bwrap
from tests.support.corpus import CORPUS, flaw
from tests.support.stack import Stack, run_assay

pytestmark = needs_bwrap
# One Flask pair (requirements.json) and one FastAPI pair (its served /openapi.json), each flaw `critical`.
PAIRS = {"sqli-flask": "requirements.json", "sqli-fastapi": "GET /openapi.json"}
# Every dynamic tool but wapiti: its findings are `low` (no proof Assay can replay), so no verdict turns on them,
# and it runs for minutes.
TOOLS = [tool for tool in TOOLS_BY_SERVICE["dynamic"] if tool != "wapiti"]


class Judged(msgspec.Struct, kw_only=True):
    stack: Stack
    apps: Path  # the stack's apps root: copies of the pairs, so an app can be changed in place
    tasks: dict[str, dict[str, Any]]  # "<pair>/app<N>" → GET /api/tasks/{id}


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory, app_work_dir: Path) -> Iterator[Judged]:
    root = tmp_path_factory.mktemp("verdicts")
    apps = root / "apps"
    for pair in PAIRS:
        shutil.copytree(CORPUS / pair, apps / pair)
    stack = Stack(
        root / "stack",
        apps_dir=apps,
        analyzers={"dynamic": 1},
        extra_env={"ASSAY_APP_WORK_DIR": str(app_work_dir)},
    )
    stack.start()
    try:
        submitted = {
            f"{pair}/app{number}": stack.submit(
                model_slug=pair, app_number=number, analysis_type="dynamic", tools=TOOLS
            )
            for pair in PAIRS
            for number in (1, 2)
        }
        tasks = {app: stack.wait_terminal(task_id, timeout_s=400) for app, task_id in submitted.items()}
        yield Judged(stack=stack, apps=apps, tasks=tasks)
    finally:
        stack.stop()


def findings(stack: Stack, task_id: str) -> dict[str, dict[str, Any]]:
    """The task's findings from the gateway, by fingerprint."""
    response = httpx.get(
        f"{stack.gateway_url}/api/tasks/{task_id}/findings",
        params={"limit": 1000},
        headers=stack.headers,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return {finding["fingerprint"]: finding for finding in response.json()["findings"]}


@pytest.mark.parametrize("pair", PAIRS)
def test_the_vulnerable_app_is_exploitable_by_its_proven_finding_and_the_fixed_twin_is_not(
    judged: Judged, pair: str
) -> None:
    spec = flaw(pair)
    assert spec.dynamic is not None
    vulnerable, fixed = judged.tasks[f"{pair}/app1"], judged.tasks[f"{pair}/app2"]
    for task in (vulnerable, fixed):
        assert task["status"] == "completed", (task["status_reason"], judged.stack.log_tail())

    exploitable = vulnerable["verdicts"]["exploitable"]
    assert exploitable["answer"] == "yes", exploitable
    behind = findings(judged.stack, vulnerable["task_id"])
    assert exploitable["findings"] and set(exploitable["findings"]) <= set(behind)
    proven = [behind[fingerprint] for fingerprint in exploitable["findings"]]
    assert spec.dynamic.tool in {finding["tool"] for finding in proven}
    for finding in proven:
        assert finding["service"] == "dynamic" and finding["proof"]["exchanges"], finding
        assert SEVERITIES.index(finding["severity"]) <= SEVERITIES.index("high")
        assert f"{finding['tool']}:{finding['rule_id']}" in exploitable["reason"]

    safe = fixed["verdicts"]["exploitable"]
    assert safe["answer"] == "no" and safe["findings"] == [], safe
    assert "active check(s) attacked the app" in safe["reason"] and spec.dynamic.tool in safe["reason"]
    assert not [
        f
        for f in findings(judged.stack, fixed["task_id"]).values()
        if f["proof"] and f["severity"] in ("critical", "high")
    ]


@pytest.mark.parametrize("pair", PAIRS)
def test_both_apps_work_as_their_documents_promise(judged: Judged, pair: str) -> None:
    document = PAIRS[pair]
    for number in (1, 2):
        task = judged.tasks[f"{pair}/app{number}"]
        verdict = task["verdicts"]["works"]
        assert verdict["answer"] == "yes", verdict
        assert f"answered as promised ({document})" in verdict["reason"]
        (run,) = [tool for tool in task["tools"] if tool["tool"] == "endpoints"]
        assert run["status"] == "success"
    requirements = judged.apps / pair / "app1" / "requirements.json"
    if requirements.is_file():  # every endpoint it declares was called, and passed
        declared = len(json.loads(requirements.read_text())["endpoints"])
        assert (
            f"all {declared} declared endpoints"
            in judged.tasks[f"{pair}/app1"]["verdicts"]["works"]["reason"]
        )


@pytest.mark.parametrize("pair", PAIRS)
def test_the_task_its_result_document_and_manifest_show_the_same_verdicts(judged: Judged, pair: str) -> None:
    task = judged.tasks[f"{pair}/app1"]
    folder = judged.stack.results_dir / task["result_dir"]
    document = json.loads((folder / f"{pair}_app1_{task['task_id']}.json").read_text())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert document["verdicts"] == manifest["verdicts"] == task["verdicts"]
    listed = httpx.get(
        f"{judged.stack.gateway_url}/api/tasks",
        params={"model_slug": pair, "app_number": 1},
        headers=judged.stack.headers,
        timeout=10,
    ).json()["tasks"]
    assert [summary["verdicts"] for summary in listed] == [task["verdicts"]]
    # the endpoint check's record, where the verdict on `works` came from, is in the dynamic service's file
    dynamic = json.loads((folder / "services" / "dynamic.json").read_text())
    assert dynamic["metrics"]["endpoints"]["document"] == PAIRS[pair]


@pytest.mark.parametrize("pair", PAIRS)
def test_replay_through_the_gateway_holds_on_the_app_and_not_once_its_code_is_fixed(
    judged: Judged, pair: str
) -> None:
    task = judged.tasks[f"{pair}/app1"]
    (fingerprint, *_) = task["verdicts"]["exploitable"]["findings"]
    app, twin = judged.apps / pair / "app1", judged.apps / pair / "app2"

    holds = run_assay(judged.stack, "replay", task["task_id"], fingerprint)
    assert holds.returncode == 0, (holds.stdout, holds.stderr)
    assert "still holds" in holds.stdout

    kept = judged.apps / pair / "app1-vulnerable"
    shutil.copytree(app, kept)
    try:
        shutil.rmtree(app)
        shutil.copytree(twin, app)  # the fix, at the same app path
        fixed = run_assay(judged.stack, "replay", task["task_id"], fingerprint[:12], "--json")
        assert fixed.returncode == 1, (fixed.stdout, fixed.stderr)
        outcome = json.loads(fixed.stdout)
        assert outcome["finding"] == fingerprint and outcome["holds"] is False
    finally:
        shutil.rmtree(app)
        kept.rename(app)
