"""Verdicts: each of works, exploitable and flagged judged from constructed service outcomes (every answer and the
findings behind it), and, through the real persister on a real nats-server and SQLite file, stored on the task row
and written into the result document and the manifest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from services.analyzers.dynamic.analyzer import build_analyzer
from services.analyzers.dynamic.attack_tool import AttackTool
from services.analyzers.dynamic.unproven import ProofRule
from services.persister.document import Ending
from services.persister.judgement import judge
from services.persister.lookups import TaskSnapshot
from services.persister.staging import StagedService
from shared.jetstream.natsd import EmbeddedNats
from shared.results.findings import Exchange, Finding, Proof, Severity, ToolRun, fingerprint
from shared.results.verdicts import Verdicts
from shared.store.models import Task
from shared.wire.app_run import AppRun, SandboxSettings
from shared.wire.catalog import OBSERVING_TOOLS, TOOLS_BY_SERVICE, UNPROVEN_TOOLS
from shared.wire.messages import AnalysisRequest, ServiceFinished, TaskCompleted, TaskStarted
from shared.wire.protocol import ServiceResult
from shared.wire.tasks import TaskRef, new_task_id
from tests.support.persister import APP, MODEL, Harness, read_json, result_folder, running_persister

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ENDED = Ending("completed", None, NOW)


def snapshot(waived: tuple[str, ...] = ()) -> TaskSnapshot:
    return TaskSnapshot(
        task=TaskRef(id="task_0123456789ab", model_slug=MODEL, app_number=APP, analysis_type="comprehensive"),
        priority="normal",
        tools=[],
        services=["static", "dynamic"],
        status="running",
        status_reason=None,
        created_at=NOW,
        started_at=NOW,
        worker=None,
        trace_id=None,
        result_dir=None,
        waived_rules=waived,
    )


def finding(
    tool: str,
    rule: str,
    severity: Severity,
    *,
    proof: bool = False,
    origin: str = "app",
    category: str = "security",
    cwe: str | None = None,
) -> Finding:
    exchange = Exchange(method="GET", path="/search?q='", status=500, response_excerpt="syntax error")
    return Finding(
        tool=tool,
        rule_id=rule,
        severity=severity,
        message=f"{rule} found",
        path="backend/app.py",
        line=7,
        category=category,
        cwe=cwe,
        origin=origin,  # type: ignore[arg-type]
        fingerprint=fingerprint(tool, rule, "backend/app.py", f"{rule} {origin} {proof}"),
        proof=Proof(exchanges=[exchange], evidence="syntax error", why="the quote broke the query")
        if proof
        else None,
    )


def staged(
    service: str, findings: list[Finding], tools: list[ToolRun], metrics: dict[str, Any]
) -> StagedService:
    result = ServiceResult(service=service, status="success", tools=tools, findings=findings, metrics=metrics)
    return StagedService(service=service, status="success", event_id=f"ev-{service}", result=result)


def endpoints(passed: int, total: int) -> tuple[ToolRun, dict[str, Any], list[Finding]]:
    results = [
        {"method": "GET", "path": f"/api/{n}", "called": f"/api/{n}", "expected": ["200"],
         "actual_status": 200 if n < passed else 500, "outcome": "passed" if n < passed else "failed", "error": None}
        for n in range(total)
    ]  # fmt: skip
    mismatches = [
        finding("endpoints", "endpoint-mismatch", "medium", category="requirements")
        for _ in range(total - passed)
    ]
    run = ToolRun(tool="endpoints", status="success", findings_count=len(mismatches))
    metrics = {"source": "requirements", "document": "requirements.json", "total": total, "passed": passed,
               "failed": total - passed, "unverified": 0, "declared": total, "stopped_by": None, "results": results}  # fmt: skip
    return run, {"endpoints": metrics}, mismatches


def dynamic(
    findings: list[Finding], *runs: ToolRun, endpoint_check: tuple[int, int] | None = (3, 3)
) -> StagedService:
    tools = [ToolRun(tool="sqli", status="success"), *runs]
    metrics: dict[str, Any] = {"sqli": {"points_tested": 3, "requests": 14, "stopped_by": None}}
    if endpoint_check is not None:
        run, checked, mismatches = endpoints(*endpoint_check)
        tools.append(run)
        metrics.update(checked)
        findings = [*findings, *mismatches]
    return staged("dynamic", findings, tools, metrics)


def static(findings: list[Finding]) -> StagedService:
    return staged("static", findings, [ToolRun(tool="bandit", status="success")], {})


def test_an_app_whose_endpoints_all_answer_works_and_one_that_fails_one_does_not() -> None:
    all_pass = judge(snapshot(), ENDED, [dynamic([])])
    two_fail = judge(snapshot(), ENDED, [dynamic([], endpoint_check=(1, 3))])

    assert all_pass.works.answer == "yes" and "all 3 declared endpoints" in all_pass.works.reason
    assert all_pass.works.findings == []
    assert two_fail.works.answer == "no"
    assert two_fail.works.reason.startswith(
        "2 of 3 declared endpoints (requirements.json) did not answer as promised"
    )
    assert "GET /api/1: expected 200, got 500" in two_fail.works.reason
    assert two_fail.works.findings == [f.fingerprint for f in endpoints(1, 3)[2]]


def test_works_is_unknown_without_declared_endpoints_or_an_app_run_and_no_when_the_app_never_answered() -> (
    None
):
    no_spec = ToolRun(tool="endpoints", status="skipped", reason="no requirements.json")
    unreachable = ToolRun(
        tool="endpoints", status="skipped", reason="targets_unreachable: http://127.0.0.1:5000 (refused)"
    )
    sandbox = SandboxSettings(
        mode="bwrap",
        network="none",
        writable=[],
        hidden="",
        cpu_s=1,
        memory_mb=1,
        processes=1,
        open_files=1,
        wall_s=1,
    )
    crashed = AppRun(
        run_id="r", source_hash="h", sandbox=sandbox, command=[], error="app did not start: exit 1"
    )

    declared_none = judge(snapshot(), ENDED, [dynamic([], no_spec, endpoint_check=None)])
    static_only = judge(snapshot(), ENDED, [static([])])
    never_answered = judge(snapshot(), ENDED, [dynamic([], unreachable, endpoint_check=None)])
    did_not_start = judge(snapshot(), Ending("failed", "app did not start", NOW, app=crashed), [])

    assert (declared_none.works.answer, declared_none.works.reason) == (
        "unknown",
        "the endpoint check was skipped: no requirements.json",
    )
    assert (static_only.works.answer, static_only.works.reason) == ("unknown", "the task did not run the app")
    assert never_answered.works.answer == "no" and "targets_unreachable" in never_answered.works.reason
    assert (did_not_start.works.answer, did_not_start.works.reason) == ("no", "app did not start: exit 1")


def test_exploitable_needs_a_proof_at_high_or_worse_from_the_dynamic_analyzer() -> None:
    proven = finding("sqli", "sqli-boolean", "critical", proof=True, cwe="CWE-89")
    proven_low = finding("open-redirect", "open-redirect", "low", proof=True, cwe="CWE-601")
    unproven_high = finding("cors", "cors-wildcard-with-credentials", "high", category="http", cwe="CWE-942")

    broken = judge(snapshot(), ENDED, [dynamic([proven, proven_low, unproven_high])])
    holds = judge(snapshot(), ENDED, [dynamic([proven_low, unproven_high])])
    not_attacked = judge(snapshot(), ENDED, [static([finding("bandit", "B608", "critical", proof=True)])])
    unreached = judge(
        snapshot(),
        ENDED,
        [
            staged(
                "dynamic",
                [],
                [ToolRun(tool="sqli", status="skipped", reason="targets_unreachable: x")],
                {},
            )
        ],
    )

    assert broken.exploitable.answer == "yes" and broken.exploitable.findings == [proven.fingerprint]
    assert "sqli:sqli-boolean at backend/app.py:7" in broken.exploitable.reason
    assert holds.exploitable.answer == "no" and holds.exploitable.findings == []
    assert (not_attacked.exploitable.answer, not_attacked.exploitable.reason) == (
        "unknown",
        "the task did not attack the running app",
    )
    assert (
        unreached.exploitable.answer == "unknown" and "targets_unreachable: x" in unreached.exploitable.reason
    )


def test_works_judges_only_the_calls_it_could_verify_and_never_a_check_stopped_halfway() -> None:
    def check(outcomes: list[str], stopped_by: str | None = None) -> StagedService:
        results = [
            {"method": "GET", "path": f"/api/{n}/{{id}}", "called": f"/api/{n}/1", "expected": ["200"],
             "actual_status": {"passed": 200, "failed": 500, "unverified": 404}[outcome], "outcome": outcome,
             "note": "refused a value Assay made up" if outcome == "unverified" else None, "error": None}
            for n, outcome in enumerate(outcomes)
        ]  # fmt: skip
        counts = {o: outcomes.count(o) for o in ("passed", "failed", "unverified")}
        metrics = {"endpoints": {"source": "openapi", "document": "GET /openapi.json", "stopped_by": stopped_by,
                                 "total": counts["passed"] + counts["failed"], **counts, "results": results}}  # fmt: skip
        return staged("dynamic", [], [ToolRun(tool="endpoints", status="success")], metrics)

    some_unverified = judge(snapshot(), ENDED, [check(["passed", "unverified", "passed"])]).works
    none_verified = judge(snapshot(), ENDED, [check(["unverified", "unverified"])]).works
    stopped = judge(snapshot(), ENDED, [check(["passed"], stopped_by="the check's budget is spent")]).works
    failed = judge(snapshot(), ENDED, [check(["unverified", "failed"])]).works

    assert some_unverified.answer == "yes"
    assert some_unverified.reason.startswith(
        "all 2 declared endpoints answered as promised (GET /openapi.json)"
    )
    assert (
        "1 could not be verified: GET /api/1/{id}: expected 200, got 404 (refused a value"
        in some_unverified.reason
    )
    assert none_verified.answer == "unknown" and "none of the 2 declared endpoints could be verified" in (
        none_verified.reason
    )
    assert (
        stopped.answer == "unknown" and "stopped before it called every declared endpoint" in stopped.reason
    )
    assert failed.answer == "no" and failed.reason.startswith("1 of 1 declared endpoints (GET /openapi.json)")


def test_exploitable_is_no_only_when_an_active_check_really_attacked_the_app() -> None:
    observing = [
        ToolRun(tool=name, status="success") for name in ("reachability", "security-headers", "surface")
    ]
    unproven = [ToolRun(tool=name, status="success") for name in ("sensitive-paths", "wapiti")]
    idle = [ToolRun(tool="idor", status="success"), ToolRun(tool="brute-force", status="success"),
            ToolRun(tool="sqli", status="success")]  # fmt: skip
    idle_metrics = {
        "idor": {"skipped": "needs two users", "requests": 0},
        "brute-force": {"skipped": "no sign-up and log-in routes", "requests": 0},
        "sqli": {"points_tested": 0, "requests": 0},
    }

    only_passive = judge(snapshot(), ENDED, [staged("dynamic", [], [*observing, *unproven], {})]).exploitable
    nothing_attacked = judge(snapshot(), ENDED, [staged("dynamic", [], [*observing, *idle], idle_metrics)])
    attacked = judge(
        snapshot(),
        ENDED,
        [staged("dynamic", [], [*idle, ToolRun(tool="ssti", status="success")],
                {**idle_metrics, "ssti": {"points_tested": 4, "requests": 9}})],
    )  # fmt: skip

    # wapiti and the sensitive paths report without proof: their silence confirms nothing absent
    assert only_passive.answer == "unknown" and "only tools that observe or report without proof" in (
        only_passive.reason
    )
    assert nothing_attacked.exploitable.answer == "unknown"
    assert "idor (needs two users)" in nothing_attacked.exploitable.reason
    assert "sqli (sent no request)" in nothing_attacked.exploitable.reason
    assert attacked.exploitable.answer == "no"
    assert attacked.exploitable.reason.startswith("1 active check(s) attacked the app (ssti); none confirmed")
    assert "3 did not attack: brute-force (no sign-up and log-in routes)" in attacked.exploitable.reason


def test_every_dynamic_tool_is_an_observer_an_unproven_tool_or_an_active_check_with_proof() -> None:
    analyzer = build_analyzer()
    assert [tool.name for tool in analyzer.tools] == list(TOOLS_BY_SERVICE["dynamic"])
    for wrapped in analyzer.tools:
        assert isinstance(wrapped, ProofRule), wrapped  # every dynamic tool's findings pass the proof rule
        tool = wrapped.tool
        kinds = [tool.name in OBSERVING_TOOLS, tool.name in UNPROVEN_TOOLS, isinstance(tool, AttackTool)]
        assert kinds.count(True) == 1, (tool.name, kinds)


def test_an_app_that_did_not_answer_is_not_flagged_but_a_weakness_its_answers_show_is() -> None:
    unreachable = finding("reachability", "target-unreachable", "high", category="http")
    cors = finding("cors", "cors-wildcard-with-credentials", "high", category="http", cwe="CWE-942")

    down = judge(snapshot(), ENDED, [dynamic([unreachable])]).flagged
    open_to_all = judge(snapshot(), ENDED, [dynamic([unreachable, cors])]).flagged

    assert down.answer == "no" and down.findings == []
    assert open_to_all.answer == "yes" and open_to_all.findings == [cors.fingerprint]


def test_flagged_counts_unconfirmed_weaknesses_at_high_or_worse_in_the_apps_own_code_only() -> None:
    severe = finding("bandit", "B608", "high", cwe="CWE-89")
    vendored = finding("bandit", "B608", "critical", origin="vendored", cwe="CWE-89")
    tested = finding("bandit", "B105", "high", origin="test", cwe="CWE-259")
    type_error = finding("mypy", "arg-type", "high", category="type")
    medium = finding("bandit", "B104", "medium", cwe="CWE-605")
    confirmed = finding("sqli", "sqli-boolean", "critical", proof=True)

    flagged = judge(snapshot(), ENDED, [static([severe, vendored, tested, type_error, medium])]).flagged
    clean = judge(snapshot(), ENDED, [static([vendored, tested, type_error, medium]), dynamic([confirmed])])
    nothing_ran = judge(
        snapshot(), ENDED, [staged("static", [], [ToolRun(tool="bandit", status="failed")], {})]
    )

    assert flagged.answer == "yes" and flagged.findings == [severe.fingerprint]
    assert clean.flagged.answer == "no" and clean.flagged.findings == []
    assert clean.exploitable.answer == "yes"  # a confirmed flaw is exploitable, not merely flagged
    assert nothing_ran.flagged.answer == "unknown"
    assert judge(snapshot(), ENDED, []).flagged.answer == "unknown"


def test_waived_rules_count_in_no_verdict() -> None:
    bound = finding("bandit", "B104", "high", cwe="CWE-605")  # the study asked for 0.0.0.0
    also_bound = finding("ruff", "S104", "high", cwe=None)  # the same weakness (issue_groups maps S104)
    attack = finding("sqli", "sqli-boolean", "critical", proof=True, cwe="CWE-89")

    by_rule = judge(snapshot(("bandit:B104",)), ENDED, [static([bound])])
    by_weakness = judge(snapshot(("CWE-605",)), ENDED, [static([bound, also_bound])])
    rule_only = judge(snapshot(("bandit:B104",)), ENDED, [static([bound, also_bound])])
    attack_waived = judge(snapshot(("CWE-89",)), ENDED, [dynamic([attack])])

    assert by_rule.flagged.answer == "no"
    assert by_weakness.flagged.answer == "no"
    assert rule_only.flagged.answer == "yes" and rule_only.flagged.findings == [also_bound.fingerprint]
    assert attack_waived.exploitable.answer == "no"


# ---- through the persister ----


@pytest.fixture
async def harness(nats_server: EmbeddedNats, database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_persister(nats_server.url, database_url, tmp_path) as running:
        yield running


async def test_the_persister_stores_the_verdicts_with_the_task_and_writes_them_into_its_folder(
    harness: Harness,
) -> None:
    task = TaskRef(id=new_task_id(), model_slug=MODEL, app_number=APP, analysis_type="comprehensive")
    attack = finding("sqli", "sqli-boolean", "critical", proof=True, cwe="CWE-89")
    bound = finding("bandit", "B104", "high", cwe="CWE-605")
    severe = finding("bandit", "B608", "high", cwe="CWE-89")
    results = {"static": static([bound, severe]), "dynamic": dynamic([attack])}
    await harness.publish_request(AnalysisRequest(task=task, waived_rules=["CWE-605"]))
    await harness.publish_event(TaskStarted(task=task, services=list(results)))
    for name, outcome in results.items():
        await harness.publish_event(
            ServiceFinished(task=task, service=name, status="success", result=outcome.result)
        )
    await harness.publish_event(TaskCompleted(task=task, status="completed", services=list(results)))

    row = await harness.wait_status(task.id, "completed")
    expected = judge(snapshot(("CWE-605",)), ENDED, list(results.values()))
    stored = msgspec.convert(row.verdicts, Verdicts)
    assert stored == expected
    assert (stored.works.answer, stored.exploitable.answer, stored.flagged.answer) == ("yes", "yes", "yes")
    assert stored.flagged.findings == [severe.fingerprint]  # the waived B104 is not behind it
    async with harness.engine.connect() as connection:
        waived = (await connection.execute(select(Task.waived_rules).where(Task.task_id == task.id))).scalar()
    assert waived == ["CWE-605"]

    folder = result_folder(harness, row)
    document = read_json(folder / f"{MODEL}_app{APP}_{task.id}.json")
    manifest = read_json(folder / "manifest.json")
    assert document["verdicts"] == manifest["verdicts"] == msgspec.to_builtins(expected)
    assert document["waived_rules"] == ["CWE-605"]
