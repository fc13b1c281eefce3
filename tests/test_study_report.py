"""The report's lead, on a database seeded through the persister's own write path (SQLite and PostgreSQL): the
verdict shares and their Wilson intervals, the pairwise McNemar tests with Holm's correction, the ranking, the
models x weakness-family table, each checked against a computation written here (no code of the report's); runs
that did not complete listed and left out; `?batch=` limiting it; two batches compared; the three formats saying
the same; and reports read while tasks complete never answering 500 (F9)."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from services.persister.database import record_service
from shared.jetstream.natsd import EmbeddedNats
from shared.results.findings import Exchange, Finding, Proof, ToolRun, fingerprint
from shared.store.database import create_engine, sessions
from shared.store.models import Task
from shared.wire.messages import ServiceFinished
from shared.wire.protocol import ServiceResult
from shared.wire.tasks import AnalysisType, TaskRef, new_task_id
from tests.support.gateway import Gateway, gateway_for, gateway_settings, migrate_database, run_cli

BATCH, OTHER_BATCH = "batch_aaaaaaaaaaaa", "batch_bbbbbbbbbbbb"
KIND: AnalysisType = "comprehensive"
ALPHA = 0.05
Z95 = 1.959964
MIN_APPS = 10
# Per model: the chance an app works, is exploitable, is flagged (a model far from another differs significantly).
PROFILES = {"model-a": (0.9, 0.1, 0.3), "model-b": (0.2, 0.7, 0.8), "model-c": (0.5, 0.5, 0.5)}
APPS = {"model-a": 14, "model-b": 14, "model-c": 4}  # model-c has too few apps for an interval
# The families the seeded findings belong to, as the CWE hierarchy places them (written here, not imported).
FAMILY_OF = {
    "CWE-89": "sql-injection",
    "CWE-79": "xss",
    "CWE-22": "path-traversal",
    "CWE-605": "exposed-interfaces",
}
WAIVED = ["CWE-605"]
MEASURES = ("works", "not_exploitable", "both", "not_flagged")


@dataclass
class App:
    model: str
    number: int
    works: str
    exploitable: str
    flagged: str
    findings: list[Finding]
    batch: str = BATCH
    static_tools: list[ToolRun] = field(default_factory=list)  # the static run's tool records
    task_id: str = field(default_factory=new_task_id)


def finding(
    rule: str, cwe: str, severity: str, line: int, origin: str = "app", proof: bool = False
) -> Finding:
    tool = "sqlmap-like" if proof else "bandit"
    exchanges = [Exchange(method="GET", path=f"/x?{rule}", status=500)]
    return Finding(
        tool=tool,
        rule_id=rule,
        severity=severity,  # type: ignore[arg-type]
        message=rule,
        path="backend/app.py",
        line=line,
        cwe=cwe,
        origin=origin,  # type: ignore[arg-type]
        fingerprint=fingerprint(tool, rule, "backend/app.py", f"{rule} {line} {origin}"),
        proof=Proof(exchanges=exchanges, evidence="error", why="it broke") if proof else None,
    )


def seeded(rng: random.Random, batch: str = BATCH) -> list[App]:
    apps = []
    for model, (works, exploitable, flagged) in PROFILES.items():
        for number in range(1, APPS[model] + 1):

            def pick(chance: float) -> str:
                return "unknown" if rng.random() < 0.08 else "yes" if rng.random() < chance else "no"

            found = []
            if rng.random() < 0.5:
                found.append(finding("B608", "CWE-89", rng.choice(["medium", "high"]), 10))
            if rng.random() < 0.3:
                found.append(finding("xss-reflected", "CWE-79", "high", 20, proof=True))
            if rng.random() < 0.3:
                found.append(finding("B703", "CWE-79", "low", 30))  # below medium, unconfirmed: not counted
            if rng.random() < 0.4:
                found.append(
                    finding("traversal", "CWE-22", "critical", 40, origin="vendored")
                )  # not app code
            found.append(finding("B104", "CWE-605", "medium", 50))  # the study asked for it: waived
            apps.append(App(model, number, pick(works), pick(exploitable), pick(flagged), found, batch))
    return apps


def verdicts(app: App) -> dict[str, Any]:
    """As the persister judges them: an exploitable app names its proven findings."""
    proven = [f.fingerprint for f in app.findings if f.proof is not None] if app.exploitable == "yes" else []
    return {name: {"answer": getattr(app, name), "reason": f"seeded {name}",
                   "findings": proven if name == "exploitable" else []}
            for name in ("works", "exploitable", "flagged")}  # fmt: skip


async def add_task(factory: Any, app: App, status: str, age_s: float, reason: str | None = None) -> str:
    now = datetime.now(UTC) - timedelta(seconds=age_s)
    task_id = app.task_id if status == "completed" else new_task_id()
    async with factory() as session, session.begin():
        session.add(
            Task(task_id=task_id, model_slug=app.model, app_number=app.number, analysis_type=KIND,
                 priority="normal", tools=[], services=["static", "dynamic"], status=status, status_reason=reason,
                 progress_percent=100.0, findings_count=len(app.findings), severity_breakdown={}, created_at=now,
                 updated_at=now, source_lines=500, batch_id=app.batch, waived_rules=WAIVED,
                 verdicts=verdicts(app) if status == "completed" else None)
        )  # fmt: skip
    return task_id


async def seed(database_url: str, apps: list[App], age_s: float = 100) -> None:
    """Each app's completed task, its findings through the persister's writer (the dynamic analyzer's proofs on
    their own run)."""
    engine = create_engine(database_url)
    factory = sessions(engine)
    for app in apps:
        await add_task(factory, app, "completed", age_s)
        ref = TaskRef(id=app.task_id, model_slug=app.model, app_number=app.number, analysis_type=KIND)
        for service in ("static", "dynamic"):
            mine = [f for f in app.findings if (f.proof is not None) == (service == "dynamic")]
            tools = app.static_tools if service == "static" else []
            result = ServiceResult(service=service, status="success", findings=mine, tools=tools)
            await record_service(
                factory, ServiceFinished(task=ref, service=service, status="success"), result, None
            )
    await engine.dispose()


# ---- the independent computations ----


def wilson(yes: int, n: int) -> tuple[float, float]:
    """The ends of Wilson's score interval found as the roots of (p̂ - p)² = z² p (1 - p) / n, by bisection."""
    share = yes / n

    def outside(p: float) -> bool:
        return (share - p) ** 2 > Z95 * Z95 * p * (1 - p) / n

    def root(inside: float, out: float) -> float:
        for _ in range(100):
            middle = (inside + out) / 2
            inside, out = (inside, middle) if outside(middle) else (middle, out)
        return (inside + out) / 2

    return (0.0 if share == 0 else root(share, 0.0)), (1.0 if share == 1 else root(share, 1.0))


def binomial_two_sided(a: int, b: int) -> float:
    """P(a count at least as far from n/2 as the observed one), X ~ binomial(a + b, 1/2)."""
    n = a + b
    if n == 0:
        return 1.0
    low, high = min(a, b), max(a, b)
    pmf = [math.comb(n, k) * 0.5**n for k in range(n + 1)]
    return min(1.0, sum(pmf[: low + 1]) + sum(pmf[high:]) if low != high else 1.0)


def holm_rejects(p_values: list[float], alpha: float) -> list[bool]:
    """Holm's step-down procedure: reject the smallest while p_(i) <= alpha / (m - i), stop at the first that is not."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    for position, index in enumerate(order):
        if p_values[index] > alpha / (len(p_values) - position):
            break
        rejected[index] = True
    return rejected


def measure_of(app: App, measure: str) -> str:
    flip = {"yes": "no", "no": "yes", "unknown": "unknown"}
    if measure == "works":
        return app.works
    if measure == "not_exploitable":
        return flip[app.exploitable]
    if measure == "not_flagged":
        return flip[app.flagged]
    if "unknown" in (app.works, app.exploitable):
        return "unknown"
    return "yes" if (app.works, app.exploitable) == ("yes", "no") else "no"


def expected_families(apps: list[App]) -> dict[tuple[str, str], tuple[int, int]]:
    """(model, family) -> (apps affected, of them confirmed), from the seeded findings and the rules of the table."""
    counted: dict[tuple[str, str], list[bool]] = {}
    for app in apps:
        hit: dict[str, bool] = {}
        for f in app.findings:
            if (
                f.origin != "app"
                or f.cwe in WAIVED
                or (f.severity not in ("critical", "high", "medium") and not f.proof)
            ):
                continue
            family = FAMILY_OF[f.cwe or ""]
            hit[family] = hit.get(family, False) or f.proof is not None
        for family, confirmed in hit.items():
            counted.setdefault((app.model, family), []).append(confirmed)
    return {key: (len(marks), sum(marks)) for key, marks in counted.items()}


# ---- the tests ----


@pytest.fixture
async def gateway(tmp_path: Path, nats_server: EmbeddedNats, any_database: str) -> AsyncIterator[Gateway]:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(any_database))
    async with gateway_for(settings) as running:
        yield running


async def test_the_verdicts_pairwise_tests_and_families_match_an_independent_computation(
    gateway: Gateway,
) -> None:
    apps = seeded(random.Random(21))
    await seed(gateway.settings.database_url, apps)
    report = (await gateway.http.get("/api/reports/models", params={"batch": BATCH})).json()

    assert report["scope"] == {"analysis_type": None, "batch": BATCH}
    assert (report["min_apps"], report["alpha"], report["waived_rules"]) == (MIN_APPS, ALPHA, WAIVED)
    rows = {row["model_slug"]: row for row in report["verdicts"]}
    assert sorted(rows) == sorted(PROFILES)
    for model, row in rows.items():
        mine = [app for app in apps if app.model == model]
        assert row["apps"] == len(mine) and row["analysis_type"] == KIND
        for measure in MEASURES:
            answers = [measure_of(app, measure) for app in mine]
            yes, known = answers.count("yes"), answers.count("yes") + answers.count("no")
            share = row[measure]
            assert (share["yes"], share["known"], share["unknown"]) == (yes, known, len(mine) - known)
            assert share["share"] == pytest.approx(yes / known, abs=1e-6)
            if known < MIN_APPS:
                assert share["interval"] is None and "too few apps" in share["note"]
            else:
                low, high = wilson(yes, known)
                assert share["interval"]["low"] == pytest.approx(low, abs=1e-5), (model, measure)
                assert share["interval"]["high"] == pytest.approx(high, abs=1e-5), (model, measure)
        assert {(a["app_number"], a["works"]) for a in row["app_verdicts"]} == {
            (a.number, a.works) for a in mine
        }

    for measure in MEASURES:
        tests = [t for t in report["pairwise"] if t["measure"] == measure]
        expected = []
        for a, b in combinations(sorted(PROFILES), 2):
            of_b = {app.number: measure_of(app, measure) for app in apps if app.model == b}
            pairs = [
                (measure_of(app, measure), of_b.get(app.number, "unknown")) for app in apps if app.model == a
            ]
            pairs = [pair for pair in pairs if "unknown" not in pair]
            expected.append((a, b, len(pairs), pairs.count(("yes", "no")), pairs.count(("no", "yes"))))
        expected = [entry for entry in expected if entry[2] > 0]
        assert [(t["model_a"], t["model_b"], t["pairs"], t["a_only"], t["b_only"]) for t in tests] == expected
        p_values = [binomial_two_sided(a_only, b_only) for *_ab, _pairs, a_only, b_only in expected]
        for test, p_value in zip(tests, p_values, strict=True):
            assert test["p_value"] == pytest.approx(p_value, abs=1e-6)
        assert [t["significant"] for t in tests] == holm_rejects(p_values, ALPHA)
    works = {(t["model_a"], t["model_b"]): t for t in report["pairwise"] if t["measure"] == "works"}
    assert (
        works[("model-a", "model-b")]["significant"] and works[("model-a", "model-b")]["better"] == "model-a"
    )

    ranking = report["rankings"][KIND]
    assert [entry["measure"] for entry in ranking] == ["both"] * 3
    shares = {model: rows[model]["both"]["share"] for model in rows}
    assert [entry["model_slug"] for entry in ranking] == sorted(shares, key=lambda m: (-shares[m], m))
    both = [t for t in report["pairwise"] if t["measure"] == "both"]
    for entry in ranking:
        beaten = sorted(
            (t["model_b"] if t["model_a"] == entry["model_slug"] else t["model_a"])
            for t in both
            if t["significant"] and t["better"] == entry["model_slug"]
        )
        assert entry["better_than"] == beaten

    families = {(row["model_slug"], row["family"]): row for row in report["families"]}
    expected_cells = expected_families(apps)
    assert {
        key: (row["apps_affected"], row["apps_confirmed"]) for key, row in families.items()
    } == expected_cells
    assert ("model-a", "exposed-interfaces") not in families  # waived by the batch
    cell = families[("model-a", "sql-injection")]
    assert sorted(app["app_number"] for app in cell["affected"]) == sorted(
        app.number
        for app in apps
        if app.model == "model-a" and any(f.rule_id == "B608" for f in app.findings)
    )
    assert [column["id"] for column in report["family_columns"]][:1] in (["sql-injection"], ["xss"])
    quality = {q["model_slug"]: q for q in report["quality"]}
    for model, figures in quality.items():
        mine = [app for app in apps if app.model == model]
        assert figures["left_out"]["waived"] == len(mine)  # one B104 each
        assert figures["left_out"]["by_origin"].get("vendored", 0) == sum(
            1 for app in mine for f in app.findings if f.origin == "vendored"
        )
        assert figures["left_out"]["by_service"].get("dynamic", 0) == sum(
            1 for app in mine for f in app.findings if f.proof is not None
        )


async def test_runs_that_did_not_complete_are_listed_and_left_out_and_batch_limits_the_report(
    gateway: Gateway,
) -> None:
    apps = seeded(random.Random(5))
    others = seeded(random.Random(6), OTHER_BATCH)
    await seed(gateway.settings.database_url, apps, age_s=200)
    await seed(gateway.settings.database_url, others, age_s=100)
    engine = create_engine(gateway.settings.database_url)
    factory = sessions(engine)
    partial_app = App("model-d", 1, "yes", "no", "no", [], BATCH)  # a model whose only run crashed midway
    partial = await add_task(factory, partial_app, "partial", 50, "app stopped during the analysis: exit 1")
    failed = await add_task(
        factory, others[0], "failed", 10, "app did not start"
    )  # newer than its completed one
    running = await add_task(factory, App("model-a", 1, "", "", "", [], BATCH), "running", 5)
    await engine.dispose()

    everything = (await gateway.http.get("/api/reports/models")).json()
    one_batch = (await gateway.http.get("/api/reports/models", params={"batch": BATCH})).json()

    # Every task: each app's newest completed run, which is the other batch's.
    counted = {app["task_id"] for row in everything["verdicts"] for app in row["app_verdicts"]}
    assert counted == {app.task_id for app in others}
    assert {(r["task_id"], r["status"], r["counted_instead"]) for r in everything["excluded"]} == {
        (partial, "partial", None),
        (failed, "failed", others[0].task_id),
    }
    assert "model-d" not in {row["model_slug"] for row in everything["verdicts"]}
    assert everything["unfinished"] == 1 and running
    # One batch: its apps only; its partial run listed with the reason, counted nowhere.
    assert {app["task_id"] for row in one_batch["verdicts"] for app in row["app_verdicts"]} == {
        app.task_id for app in apps
    }
    [excluded] = one_batch["excluded"]
    assert (excluded["task_id"], excluded["reason"]) == (partial, "app stopped during the analysis: exit 1")
    assert one_batch["unfinished"] == 1
    assert (await gateway.http.get("/api/reports/models", params={"batch": "batch_none"})).status_code == 422
    empty = (await gateway.http.get("/api/reports/models", params={"batch": "batch_cccccccccccc"})).json()
    assert empty["verdicts"] == [] and empty["excluded"] == []

    change = (
        await gateway.http.get("/api/reports/models/compare", params={"batch": OTHER_BATCH, "against": BATCH})
    ).json()
    assert (change["head"]["batch"], change["base"]["batch"]) == (OTHER_BATCH, BATCH)
    for model in change["models"]:
        old = {a.number: a for a in apps if a.model == model["model_slug"]}
        new = {a.number: a for a in others if a.model == model["model_slug"]}
        for measure in model["measures"]:
            paired = [
                (measure_of(old[n], measure["measure"]), measure_of(new[n], measure["measure"]))
                for n in old.keys() & new.keys()
            ]
            paired = [pair for pair in paired if "unknown" not in pair]
            assert measure["paired_apps"] == len(paired)
            assert (measure["gained"], measure["lost"]) == (
                paired.count(("no", "yes")),
                paired.count(("yes", "no")),
            )
            assert measure["p_value"] == pytest.approx(binomial_two_sided(measure["gained"], measure["lost"]))
        flips = {
            (n, name)
            for n in old.keys() & new.keys()
            for name in ("works", "exploitable", "flagged")
            if getattr(old[n], name) != getattr(new[n], name)
        }
        assert {(a["app_number"], name) for a in model["app_changes"] for name in a["changed"]} == flips


async def test_the_three_formats_carry_the_same_figures_and_the_cli_asks_for_each(gateway: Gateway) -> None:
    apps = seeded(random.Random(8))
    await seed(gateway.settings.database_url, apps)
    report = (await gateway.http.get("/api/reports/models", params={"batch": BATCH, "alpha": 0.01})).json()
    as_csv = await gateway.http.get(
        "/api/reports/models", params={"batch": BATCH, "alpha": 0.01, "format": "csv"}
    )
    markdown = (
        await gateway.http.get(
            "/api/reports/models", params={"batch": BATCH, "alpha": 0.01, "format": "markdown"}
        )
    ).text
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))

    def value(section: str, model: str, subject: str, name: str) -> str:
        [found] = [r["value"] for r in rows if (r["section"], r["model_slug"], r["subject"], r["field"]) ==
                   (section, model, subject, name)]  # fmt: skip
        return found

    assert report["alpha"] == 0.01 and value("report", "", "", "alpha") == "0.01"
    for row in report["verdicts"]:
        model = row["model_slug"]
        for measure in MEASURES:
            share = row[measure]
            assert int(value("verdicts", model, "", f"{measure}.yes")) == share["yes"]
            assert int(value("verdicts", model, "", f"{measure}.known")) == share["known"]
            if share["interval"]:
                assert (
                    float(value("verdicts", model, "", f"{measure}.interval.low")) == share["interval"]["low"]
                )
                low, high = share["interval"]["low"], share["interval"]["high"]
                assert (
                    f"{share['yes']}/{share['known']} = {share['share']:.0%} ({low:.0%}–{high:.0%})"
                    in markdown
                )
            else:
                assert f"{share['yes']}/{share['known']} = {share['share']:.0%} (too few apps)" in markdown
        for app in row["app_verdicts"]:
            assert value("verdict_apps", model, f"app{app['app_number']}", "works") == app["works"]
    for test in report["pairwise"]:
        subject = f"{test['measure']}: {test['model_a']} vs {test['model_b']}"
        assert float(value("pairwise", "", subject, "p_value")) == test["p_value"]
        assert f"| {test['measure']} | {test['model_a']} | {test['model_b']} | {test['pairs']} |" in markdown
    for cell in report["families"]:
        assert (
            int(value("families", cell["model_slug"], cell["family"], "apps_affected"))
            == cell["apps_affected"]
        )
        assert f"{cell['apps_affected']} ({cell['apps_confirmed']})" in markdown

    code, out, err = await run_cli(gateway, "report", "--batch", BATCH, "--format", "csv", "--alpha", "0.01")
    assert code == 0, err
    assert list(csv.DictReader(io.StringIO(out)))[1:] == rows[1:]  # the first row holds generated_at
    code, out, err = await run_cli(gateway, "report", "--batch", BATCH, "--against", OTHER_BATCH)
    assert code == 0, err
    assert out.startswith("# What changed")
    unknown = await gateway.http.get("/api/reports/models", params={"format": "xlsx"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "format"
    # A route without formats refuses one rather than answering JSON as if it had heard it.
    refused = await gateway.http.get("/api/tasks", params={"format": "csv"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "format"


async def test_tools_that_did_not_run_in_full_are_named_with_their_tasks_and_reasons_in_each_format(
    gateway: Gateway,
) -> None:
    """pip-audit skipped offline in every counted task, semgrep partial in some (two reasons), bandit in full: the
    report names the two short tools with their counts and reasons, in JSON, CSV and Markdown, and counts a tool run
    of a task it does not count (an older run of the app) nowhere."""
    apps = [app for app in seeded(random.Random(11)) if app.model == "model-a"][:5]
    older = [App(a.model, a.number, "yes", "no", "no", [], static_tools=[ToolRun(tool="eslint", status="skipped",
             reason="no JavaScript")]) for a in apps]  # fmt: skip
    unreachable = "advisory database unreachable"
    for app in apps:
        app.static_tools = [
            ToolRun(tool="pip-audit", status="skipped", reason=unreachable),
            ToolRun(tool="bandit", status="success"),
        ]
        if app.number % 2:
            reason = "2 rules timed out" if app.number < 5 else "1 file too large"
            app.static_tools.append(ToolRun(tool="semgrep", status="partial", reason=reason))
    await seed(gateway.settings.database_url, older, age_s=500)
    await seed(gateway.settings.database_url, apps)
    params = {"batch": BATCH}
    report = (await gateway.http.get("/api/reports/models", params=params)).json()
    assert report["tools_not_in_full"] == [
        {"analysis_type": KIND, "service": "static", "tool": "pip-audit", "status": "skipped", "tasks": 5,
         "of_tasks": 5, "reasons": [unreachable]},
        {"analysis_type": KIND, "service": "static", "tool": "semgrep", "status": "partial", "tasks": 3,
         "of_tasks": 5, "reasons": ["2 rules timed out", "1 file too large"]},
    ]  # fmt: skip
    as_csv = (await gateway.http.get("/api/reports/models", params={**params, "format": "csv"})).text
    rows = {
        (r["analysis_type"], r["subject"], r["field"]): r["value"]
        for r in csv.DictReader(io.StringIO(as_csv))
        if r["section"] == "tools_not_in_full"
    }
    assert rows[(KIND, "static/pip-audit skipped", "tasks")] == "5"
    assert rows[(KIND, "static/pip-audit skipped", "reasons")] == unreachable
    assert rows[(KIND, "static/semgrep partial", "of_tasks")] == "5"
    assert rows[(KIND, "static/semgrep partial", "reasons")] == "2 rules timed out;1 file too large"
    assert not any("eslint" in subject or "bandit" in subject for _kind, subject, _field in rows)
    markdown = (await gateway.http.get("/api/reports/models", params={**params, "format": "markdown"})).text
    section = markdown.split("## Tools that did not run in full", 1)[1].split("\n## ", 1)[0]
    assert f"| {KIND} | pip-audit (static) | skipped in 5 of 5 tasks | {unreachable} |" in section
    assert (
        f"| {KIND} | semgrep (static) | partial in 3 of 5 tasks | 2 rules timed out; 1 file too large |"
        in section
    )
    assert "eslint" not in section and "bandit" not in section
    # A study whose tools all ran in full says so.
    other = (
        await gateway.http.get("/api/reports/models", params={"batch": OTHER_BATCH, "format": "markdown"})
    ).text
    assert "None: every tool of the counted tasks ran in full." in other


async def test_reports_read_while_tasks_complete_never_answer_500(gateway: Gateway) -> None:
    """F9: tasks completing (a newer completed run of an app, written as the persister writes it) while reports are
    read, of every format, over and over."""
    apps = seeded(random.Random(3))
    await seed(gateway.settings.database_url, apps, age_s=1000)
    rng = random.Random(4)
    done = asyncio.Event()

    async def complete_tasks() -> None:
        engine = create_engine(gateway.settings.database_url)
        factory = sessions(engine)
        try:
            for round_ in range(60):
                app = rng.choice(apps)
                again = App(app.model, app.number, app.works, app.exploitable, app.flagged, app.findings)
                # As the persister does: the task runs, its services' rows are written, then it completes.
                running = await add_task(factory, again, "running", age_s=900 - round_)
                ref = TaskRef(id=running, model_slug=app.model, app_number=app.number, analysis_type=KIND)
                result = ServiceResult(service="static", status="success", findings=app.findings)
                await record_service(
                    factory, ServiceFinished(task=ref, service="static", status="success"), result, None
                )
                async with factory() as session, session.begin():
                    await session.execute(
                        update(Task)
                        .where(Task.task_id == running)
                        .values(status="completed", verdicts=verdicts(app))
                    )
        finally:
            await engine.dispose()
            done.set()

    writer = asyncio.create_task(complete_tasks())
    answers = []
    while not done.is_set():
        for form in ("json", "csv", "markdown"):
            answers.append(
                (await gateway.http.get("/api/reports/models", params={"format": form})).status_code
            )
    await writer
    assert answers and set(answers) == {200}, answers
