"""The model comparison's quality table: a database seeded with 3 models x 10 apps through the persister's own write
path, every quality figure of `GET /api/reports/models` (JSON, CSV, Markdown) checked against a computation written
here, from the seeded flaws, without the report's code or the issue-group code. (The verdicts, pairwise tests and
weakness families: tests/test_study_report.py.)"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from services.gateway.api.reports.confidence import (
    RESAMPLED_UP_TO,
    bootstrap_interval,
    ratio_interval,
    resample_means,
    resample_ratios,
)
from services.persister.database import record_service
from shared.jetstream.natsd import EmbeddedNats
from shared.results.findings import SEVERITIES, Finding, Severity, fingerprint
from shared.store.database import create_engine, sessions
from shared.store.models import Task
from shared.wire.messages import ServiceFinished
from shared.wire.protocol import ServiceResult
from shared.wire.tasks import TaskRef, new_task_id
from tests.support.gateway import Gateway, gateway_for, gateway_settings, migrate_database, run_cli

REPO = Path(__file__).resolve().parent.parent
MODELS = ("model-a", "model-b", "model-c")
APPS = range(1, 11)
WEIGHTS = {"critical": 10, "high": 5, "medium": 2, "low": 1, "info": 0}
# One weakness as each tool reports it: (rule, cwe as the tool gives it); the CWE each means is the key.
WEAKNESSES: dict[str, dict[str, tuple[str, str | None]]] = {
    "CWE-89": {"bandit": ("B608", "CWE-89"), "ruff": ("S608", None), "semgrep": ("python-sql", "CWE-89")},
    "CWE-78": {"bandit": ("B602", "CWE-78"), "ruff": ("S602", None), "semgrep": ("python-shell", "CWE-78")},
    "CWE-798": {
        "bandit": ("B105", "CWE-259"),
        "ruff": ("S105", None),
        "detect-secrets": ("Secret", "CWE-798"),
    },
    "ruff:E501": {"ruff": ("E501", None)},
}


@dataclass
class Flaw:
    """One issue: the tools that report it, each with its severity, on one line."""

    weakness: str
    line: int
    reports: dict[str, Severity]


@dataclass
class SeededApp:
    model: str
    number: int
    lines: int
    flaws: list[Flaw]
    load: list[tuple[float, float, int, int]]  # per URL: p50, p99, errors, requests
    requirements: tuple[int, int]  # met, total
    task_id: str = field(default_factory=new_task_id)


def seeded_apps() -> list[SeededApp]:
    rng = random.Random(99)
    apps = []
    for model_index, model in enumerate(MODELS):
        for number in APPS:
            flaws = []
            for index in range(rng.randint(0, 6) + model_index * 2):
                weakness = rng.choice(list(WEAKNESSES))
                tools = list(WEAKNESSES[weakness])
                chosen = rng.sample(tools, rng.randint(1, len(tools)))
                flaws.append(
                    Flaw(weakness, 10 * (index + 1), {tool: rng.choice(SEVERITIES) for tool in chosen})
                )
            load = [
                (rng.uniform(5, 50), rng.uniform(60, 900), rng.randint(0, 5), rng.randint(50, 200))
                for _ in range(2)
            ]
            total = rng.randint(3, 8)
            apps.append(
                SeededApp(model, number, rng.randint(80, 900), flaws, load, (rng.randint(0, total), total))
            )
    return apps


def findings_of(app: SeededApp) -> list[Finding]:
    built = []
    for flaw in app.flaws:
        for tool, severity in flaw.reports.items():
            rule, cwe = WEAKNESSES[flaw.weakness][tool]
            built.append(
                Finding(
                    tool=tool,
                    rule_id=rule,
                    severity=severity,
                    message=f"{rule} at {flaw.line}",
                    path="backend/app.py",
                    line=flaw.line,
                    cwe=cwe,
                    fingerprint=fingerprint(tool, rule, "backend/app.py", f"line {flaw.line}"),
                )
            )
    return built


def load_metrics(app: SeededApp) -> dict[str, Any]:
    urls = {
        f"http://127.0.0.1:5000/{index}": {
            "requests": requests,
            "errors": errors,
            "latency_ms": {"p50": p50, "p99": p99},
        }
        for index, (p50, p99, errors, requests) in enumerate(app.load)
    }
    return {"load": {"status": "ok", "urls": urls}}


async def add_task(session_factory: Any, app: SeededApp, task_id: str, status: str, age_s: float) -> None:
    now = datetime.now(UTC) - timedelta(seconds=age_s)
    async with session_factory() as session, session.begin():
        session.add(
            Task(
                task_id=task_id,
                model_slug=app.model,
                app_number=app.number,
                analysis_type="comprehensive",
                priority="normal",
                tools=[],
                services=["static", "performance", "ai"],
                status=status,
                progress_percent=100.0,
                findings_count=0,
                severity_breakdown={},
                created_at=now,
                updated_at=now,
                source_lines=app.lines,
            )
        )


async def seed(database_url: str, apps: list[SeededApp]) -> None:
    """Each app's latest completed task through the persister's writer, plus tasks the report must leave out."""
    engine = create_engine(database_url)
    factory = sessions(engine)
    for app in apps:
        await add_task(factory, app, app.task_id, "completed", age_s=100)
        results = {
            "static": ServiceResult(service="static", status="success", findings=findings_of(app)),
            "performance": ServiceResult(service="performance", status="success", metrics=load_metrics(app)),
            "ai": ServiceResult(
                service="ai",
                status="success",
                metrics={"requirements-review": {"met": app.requirements[0], "total": app.requirements[1]}},
            ),
        }
        for service, result in results.items():
            event = ServiceFinished(
                task=TaskRef(
                    id=app.task_id, model_slug=app.model, app_number=app.number, analysis_type="comprehensive"
                ),
                service=service,
                status="success",
            )
            await record_service(factory, event, result, None)
        # An older completed run and a newer failed one: neither is the app's latest completed analysis.
        for task_id, status, age in ((new_task_id(), "completed", 500), (new_task_id(), "failed", 10)):
            await add_task(factory, app, task_id, status, age_s=age)
            noise = ServiceResult(service="static", status="success", findings=findings_of(app) * 2)
            ref = TaskRef(
                id=task_id, model_slug=app.model, app_number=app.number, analysis_type="comprehensive"
            )
            event = ServiceFinished(task=ref, service="static", status="success")
            await record_service(factory, event, noise, None)
    await engine.dispose()


def worst(severities: list[Severity]) -> Severity:
    return min(severities, key=SEVERITIES.index)


def expected_figures(apps: list[SeededApp]) -> dict[str, Any]:
    """What the report must say for one model's apps, computed from the seeded flaws."""
    findings = [
        (tool, severity, flaw)
        for app in apps
        for flaw in app.flaws
        for tool, severity in flaw.reports.items()
    ]
    issue_severity = Counter(worst(list(flaw.reports.values())) for app in apps for flaw in app.flaws)
    lines = sum(app.lines for app in apps)
    rules = Counter(f"{tool}:{WEAKNESSES[flaw.weakness][tool][0]}" for tool, _s, flaw in findings)
    cwes = Counter(flaw.weakness for _t, _s, flaw in findings if flaw.weakness.startswith("CWE-"))
    scores = [
        sum(WEIGHTS[worst(list(flaw.reports.values()))] for flaw in app.flaws) * 1000 / app.lines
        for app in apps
    ]
    severe = [
        app for app in apps if any(worst(list(f.reports.values())) in ("critical", "high") for f in app.flaws)
    ]
    only = Counter(next(iter(flaw.reports)) for app in apps for flaw in app.flaws if len(flaw.reports) == 1)
    pairs = Counter(
        pair for app in apps for flaw in app.flaws for pair in combinations(sorted(flaw.reports), 2)
    )
    requests = sum(url[3] for app in apps for url in app.load)
    return {
        "apps_analyzed": len(apps),
        "source_lines": lines,
        "findings": len(findings),
        "issues": sum(len(app.flaws) for app in apps),
        "findings_by_severity": {level: sum(1 for f in findings if f[1] == level) for level in SEVERITIES},
        "issues_by_severity": {level: issue_severity.get(level, 0) for level in SEVERITIES},
        "findings_per_kloc": round(len(findings) * 1000 / lines, 4),
        "issues_per_kloc": round(sum(len(app.flaws) for app in apps) * 1000 / lines, 4),
        "findings_by_tool": dict(sorted(Counter(tool for tool, _s, _f in findings).items())),
        "top_rules": sorted(rules.items(), key=lambda item: (-item[1], item[0]))[:10],
        "top_cwes": sorted(cwes.items(), key=lambda item: (-item[1], item[0]))[:10],
        "apps_with_critical_or_high": len(severe),
        "share_with_critical_or_high": round(len(severe) / len(apps), 6),
        "load": {
            "apps": len(apps),
            "p50_ms": round(sum(max(url[0] for url in app.load) for app in apps) / len(apps), 3),
            "p99_ms": round(sum(max(url[1] for url in app.load) for app in apps) / len(apps), 3),
            "error_rate": round(sum(url[2] for app in apps for url in app.load) / requests, 6),
        },
        "requirements": {
            "apps": len(apps),
            "met": sum(app.requirements[0] for app in apps),
            "total": sum(app.requirements[1] for app in apps),
            "compliance": round(
                sum(a.requirements[0] for a in apps) / sum(a.requirements[1] for a in apps), 6
            ),
        },
        "only_one_tool": dict(sorted(only.items())),
        "tool_overlap": [{"tools": list(pair), "issues": n} for pair, n in sorted(pairs.items())],
        "score": round(sum(scores) / len(scores), 6),
    }


@pytest.fixture
async def gateway(tmp_path: Path, nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Gateway]:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url))
    async with gateway_for(settings) as running:
        yield running


async def test_every_figure_of_the_comparison_matches_an_independent_computation(
    gateway: Gateway, database_url: str
) -> None:
    await check_every_figure(gateway, database_url)


async def test_the_comparison_is_the_same_on_postgresql(
    tmp_path: Path, nats_server: EmbeddedNats, postgres_url: str
) -> None:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(postgres_url))
    async with gateway_for(settings) as running:
        await check_every_figure(running, postgres_url)


async def check_every_figure(gateway: Gateway, database_url: str) -> None:
    """Seed the database, then compare every figure the gateway answers with the computation here."""
    apps = seeded_apps()
    await seed(database_url, apps)

    response = await gateway.http.get("/api/reports/models")

    assert response.status_code == 200, response.text
    report = response.json()
    assert [(m["model_slug"], m["analysis_type"]) for m in report["quality"]] == [
        (model, "comprehensive") for model in MODELS
    ]
    for answered in report["quality"]:
        figures = dict(answered)
        expected = expected_figures([app for app in apps if app.model == figures["model_slug"]])
        score = figures.pop("score")
        figures["top_rules"] = [(count["name"], count["count"]) for count in figures["top_rules"]]
        figures["top_cwes"] = [(count["name"], count["count"]) for count in figures["top_cwes"]]
        assert score["score"] == pytest.approx(expected.pop("score"), abs=1e-6)
        assert score["apps_scored"] == 10
        assert score["ci_low"] <= score["score"] <= score["ci_high"]
        assert score["ci_low"] < score["ci_high"]  # ten different apps: the interval has a width
        density = figures.pop("findings_per_kloc_interval")
        assert density["low"] <= expected["findings_per_kloc"] <= density["high"]
        assert density["low"] < density["high"]
        for name, value in expected.items():
            assert figures[name] == value, name
        assert figures["left_out"] == {"by_origin": {}, "waived": 0, "by_service": {}}
        assert figures["running_app_findings_per_app"] is None  # no dynamic analysis was seeded

    # The newer failed run of each app is listed, with the older completed run counted in its place.
    excluded = {(run["model_slug"], run["app_number"]): run for run in report["excluded"]}
    assert len(excluded) == len(apps) and report["unfinished"] == 0
    for app in apps:
        run = excluded[(app.model, app.number)]
        assert (run["status"], run["counted_instead"]) == ("failed", app.task_id)
    assert report["score_weights"] == WEIGHTS

    again = (await gateway.http.get("/api/reports/models")).json()
    assert [q["score"] for q in again["quality"]] == [
        q["score"] for q in report["quality"]
    ]  # seeded bootstrap

    for path, params in (("/api/reports/models.csv", {}), ("/api/reports/models", {"format": "csv"})):
        as_csv = await gateway.http.get(path, params=params)
        assert as_csv.headers["content-type"].startswith("text/csv"), path
        rows = list(csv.DictReader(io.StringIO(as_csv.text)))
        quality = {
            (row["model_slug"], row["field"]): row["value"] for row in rows if row["section"] == "quality"
        }
        for figures in report["quality"]:
            model = figures["model_slug"]
            assert int(quality[(model, "issues")]) == figures["issues"]
            assert (
                int(quality[(model, "findings_by_severity.high")]) == figures["findings_by_severity"]["high"]
            )
            assert float(quality[(model, "score.score")]) == figures["score"]["score"]
            assert float(quality[(model, "score.ci_low")]) == figures["score"]["ci_low"]

    for path, params in (("/api/reports/models.md", {}), ("/api/reports/models", {"format": "markdown"})):
        as_markdown = await gateway.http.get(path, params=params)
        assert as_markdown.headers["content-type"].startswith("text/markdown")
        for figures in report["quality"]:
            score = figures["score"]
            assert f"{score['score']:.2f} ({score['ci_low']:.2f}–{score['ci_high']:.2f})" in as_markdown.text

    only_static = (await gateway.http.get("/api/reports/models", params={"analysis_type": "static"})).json()
    assert only_static["quality"] == [] and only_static["rankings"] == {}
    bad = await gateway.http.get("/api/reports/models.csv", params={"analysis_type": "fast"})
    assert bad.status_code == 422 and "analysis_type" in bad.text


async def test_assay_report_prints_the_gateways_markdown_and_csv(gateway: Gateway, database_url: str) -> None:
    apps = [app for app in seeded_apps() if app.number <= 3]
    await seed(database_url, apps)
    markdown = await run_cli(gateway, "report")
    as_csv = await run_cli(gateway, "report", "--format", "csv", "--type", "comprehensive")

    assert markdown[0] == 0 and markdown[1].startswith("# Model comparison"), markdown[2]
    assert "## Quality" in markdown[1]
    assert as_csv[0] == 0
    quality = [row for row in csv.DictReader(io.StringIO(as_csv[1])) if row["section"] == "quality"]
    assert sorted({row["model_slug"] for row in quality}) == list(MODELS)


def test_bootstrap_intervals_hold_the_mean_and_the_closed_form_matches_resampling() -> None:
    rng = random.Random(3)
    small = [rng.expovariate(0.1) for _ in range(40)]
    large = [rng.expovariate(0.1) for _ in range(RESAMPLED_UP_TO + 1)]

    low, high = bootstrap_interval(small, "s")
    closed = bootstrap_interval(large, "l")
    resampled = sorted(resample_means(large, random.Random("l"), 2000))

    assert low < sum(small) / len(small) < high
    assert bootstrap_interval(small, "s") == (low, high)  # seeded: the same data, the same interval
    # Above the threshold the closed form stands in for resampling: both agree within the resampling noise.
    assert closed[0] == pytest.approx(resampled[49], rel=0.03)
    assert closed[1] == pytest.approx(resampled[1949], rel=0.03)
    assert bootstrap_interval([4.0], "x") == (4.0, 4.0)


def test_the_pooled_rate_interval_holds_the_rate_and_its_closed_form_matches_resampling() -> None:
    rng = random.Random(4)
    lines = [float(rng.randint(200, 3000)) for _ in range(RESAMPLED_UP_TO + 1)]
    found = [rng.expovariate(1 / 20) * n / 1000 for n in lines]  # findings grow with an app's size
    rate = sum(found) / sum(lines)

    low, high = ratio_interval(found[:30], lines[:30], "s")
    small_rate = sum(found[:30]) / sum(lines[:30])
    closed = ratio_interval(found, lines, "l")
    resampled = sorted(resample_ratios(found, lines, random.Random("l"), 2000))

    assert low < small_rate < high
    assert ratio_interval(found[:30], lines[:30], "s") == (low, high)  # seeded
    assert closed[0] < rate < closed[1]
    assert closed[0] == pytest.approx(resampled[49], rel=0.03)
    assert closed[1] == pytest.approx(resampled[1949], rel=0.03)
    assert ratio_interval([3.0], [1000.0], "x") == (0.003, 0.003)
