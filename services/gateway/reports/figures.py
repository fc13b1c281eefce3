"""The model comparison's figures, computed from the rows `reports.queries` reads: plain functions, no I/O.

Per model and analysis type: apps analyzed, findings and distinct issues by severity, per thousand lines, per tool,
top rules and CWEs, the share of apps with a critical or high issue, load-test figures, requirement compliance,
and tool effectiveness (issues only one tool found, issues two tools both found).

**Score** (lower is better): for each app with a known size, the weighted issues per thousand non-blank source lines,
weights `SCORE_WEIGHTS` (critical 10, high 5, medium 2, low 1, info 0); a model's score is the mean over its apps,
with a 95 % bootstrap interval over apps (services/gateway/reports/confidence.py). Two models whose intervals overlap are not
shown to differ.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from itertools import combinations
from typing import Any

import msgspec

from services.gateway.reports.confidence import LEVEL, RESAMPLES, bootstrap_interval, mean, ratio_interval
from services.gateway.reports.queries import ChosenTask, ReportRows
from shared.findings import SEVERITIES
from shared.issue_groups import weakness
from shared.messages import utcnow

SCORE_WEIGHTS: dict[str, float] = {"critical": 10.0, "high": 5.0, "medium": 2.0, "low": 1.0, "info": 0.0}
TOP = 10  # rules and CWEs listed per model
LOAD_TOOL, REQUIREMENTS_TOOL = "load", "requirements-review"


class Count(msgspec.Struct, frozen=True):
    name: str
    count: int


class ToolOverlap(msgspec.Struct, frozen=True, kw_only=True):
    tools: list[str]  # two tools
    issues: int  # issues both found


class LoadFigures(msgspec.Struct, frozen=True, kw_only=True):
    """Per app: the worst URL's p50 and p99; per model: their means, and errors over requests of every URL."""

    apps: int
    p50_ms: float
    p99_ms: float
    error_rate: float


class RequirementFigures(msgspec.Struct, frozen=True, kw_only=True):
    apps: int
    met: int
    total: int
    compliance: float  # met / total


class Interval(msgspec.Struct, frozen=True, kw_only=True):
    low: float
    high: float


class Score(msgspec.Struct, frozen=True, kw_only=True):
    apps_scored: int  # apps with a known size
    score: float | None
    ci_low: float | None
    ci_high: float | None


class ModelFigures(msgspec.Struct, frozen=True, kw_only=True):
    model_slug: str
    analysis_type: str
    apps_analyzed: int
    source_lines: int  # of the apps with a known size
    findings: int
    issues: int
    findings_by_severity: dict[str, int]
    issues_by_severity: dict[str, int]
    findings_per_kloc: float | None
    # its bootstrap interval over apps (resampling each app's findings with its lines)
    findings_per_kloc_interval: Interval | None
    issues_per_kloc: float | None
    findings_by_tool: dict[str, int]
    top_rules: list[Count]  # `<tool>:<rule>`, by findings
    top_cwes: list[Count]  # by findings, each finding's weakness (shared/issue_groups)
    apps_with_critical_or_high: int
    share_with_critical_or_high: float
    load: LoadFigures | None
    requirements: RequirementFigures | None
    only_one_tool: dict[str, int]  # tool -> issues no other tool found
    tool_overlap: list[ToolOverlap]
    score: Score


class RankEntry(msgspec.Struct, frozen=True, kw_only=True):
    rank: int
    model_slug: str
    score: float
    ci_low: float
    ci_high: float


class ModelsReport(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `GET /api/reports/models`."""

    generated_at: datetime
    analysis_type: str | None  # None: every type
    score_weights: dict[str, float]
    bootstrap_resamples: int
    confidence_level: float
    models: list[ModelFigures]
    rankings: dict[str, list[RankEntry]]  # analysis type -> models by score, best first


Key = tuple[str, str]  # (model, analysis type)


def per_kloc(count: int, lines: int) -> float | None:
    return round(count * 1000.0 / lines, 4) if lines > 0 else None


def app_score(issues: dict[str, int], lines: int) -> float:
    return sum(SCORE_WEIGHTS[level] * issues.get(level, 0) for level in SEVERITIES) * 1000.0 / lines


def worst_url_figures(metrics: dict[str, Any]) -> tuple[float, float, int, int] | None:
    """(p50, p99, errors, requests) of one load run, the worst URL's latencies; None when it measured nothing."""
    urls = [
        figures
        for figures in (metrics.get(LOAD_TOOL) or {}).get("urls", {}).values()
        if figures.get("requests")
    ]
    if not urls:
        return None
    latencies = [figures.get("latency_ms") or {} for figures in urls]
    return (
        max(float(latency.get("p50") or 0.0) for latency in latencies),
        max(float(latency.get("p99") or 0.0) for latency in latencies),
        sum(int(figures.get("errors", 0)) for figures in urls),
        sum(int(figures["requests"]) for figures in urls),
    )


def load_figures(runs: list[dict[str, Any]]) -> LoadFigures | None:
    measured = [figures for figures in map(worst_url_figures, runs) if figures is not None]
    if not measured:
        return None
    requests = sum(figures[3] for figures in measured)
    return LoadFigures(
        apps=len(measured),
        p50_ms=round(mean([figures[0] for figures in measured]), 3),
        p99_ms=round(mean([figures[1] for figures in measured]), 3),
        error_rate=round(sum(figures[2] for figures in measured) / requests, 6),
    )


def requirement_figures(runs: list[dict[str, Any]]) -> RequirementFigures | None:
    reviews = [run[REQUIREMENTS_TOOL] for run in runs if (run.get(REQUIREMENTS_TOOL) or {}).get("total")]
    if not reviews:
        return None
    met, total = sum(int(r.get("met", 0)) for r in reviews), sum(int(r["total"]) for r in reviews)
    return RequirementFigures(apps=len(reviews), met=met, total=total, compliance=round(met / total, 6))


def tool_effectiveness(tool_sets: Counter[tuple[str, ...]]) -> tuple[dict[str, int], list[ToolOverlap]]:
    only: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for tools, issues in tool_sets.items():
        if len(tools) == 1:
            only[tools[0]] += issues
        for pair in combinations(tools, 2):
            pairs[pair] += issues
    overlap = [ToolOverlap(tools=list(pair), issues=n) for pair, n in sorted(pairs.items())]
    return dict(sorted(only.items())), overlap


def top(counter: Counter[str]) -> list[Count]:
    return [Count(name, n) for name, n in sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:TOP]]


def figures_of(
    key: Key,
    tasks: list[ChosenTask],
    rows: ReportRows,
    issues_by_task: dict[str, dict[str, int]],
    findings_by_task: Counter[str],
) -> ModelFigures:
    model, analysis_type = key
    findings = [row for row in rows.findings if (row[0], row[1]) == key]
    by_severity: Counter[str] = Counter()
    by_tool: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    cwes: Counter[str] = Counter()
    for _m, _t, severity, tool, rule, cwe, n in findings:
        by_severity[severity] += n
        by_tool[tool] += n
        rules[f"{tool}:{rule}"] += n
        named = weakness(tool, rule, cwe)  # the mapping table gives a CWE to rules whose tool names none
        if named.startswith("CWE-"):
            cwes[named] += n
    app_issues = [issues_by_task.get(task.task_id, {}) for task in tasks]
    issues_by_severity: Counter[str] = Counter()
    for counts in app_issues:
        issues_by_severity.update(counts)
    sized = [(task, counts) for task, counts in zip(tasks, app_issues, strict=True) if task.source_lines]
    lines = sum(task.source_lines or 0 for task, _counts in sized)
    scores = [app_score(counts, task.source_lines or 0) for task, counts in sized]
    low, high = bootstrap_interval(scores, seed=f"{model}\x1f{analysis_type}") if scores else (None, None)
    severe = sum(1 for counts in app_issues if counts.get("critical", 0) + counts.get("high", 0) > 0)
    ids = {task.task_id for task in tasks}
    runs = [metrics for task_id, _service, metrics in rows.metrics if task_id in ids]
    sets: Counter[tuple[str, ...]] = Counter()
    for _m, _t, tools, n in (row for row in rows.tool_sets if (row[0], row[1]) == key):
        sets[tuple(sorted(set(tools.split(","))))] += n
    only, overlap = tool_effectiveness(sets)
    total_findings, total_issues = sum(by_severity.values()), sum(issues_by_severity.values())
    sized_findings = sum(findings_by_task[task.task_id] for task, _counts in sized)
    sized_issues = sum(sum(counts.values()) for _task, counts in sized)
    density = (
        ratio_interval(
            [findings_by_task[task.task_id] * 1000.0 for task, _counts in sized],
            [float(task.source_lines or 0) for task, _counts in sized],
            seed=f"{model}\x1f{analysis_type}\x1ffindings",
        )
        if sized
        else None
    )
    return ModelFigures(
        model_slug=model,
        analysis_type=analysis_type,
        apps_analyzed=len(tasks),
        source_lines=lines,
        findings=total_findings,
        issues=total_issues,
        findings_by_severity={level: by_severity.get(level, 0) for level in SEVERITIES},
        issues_by_severity={level: issues_by_severity.get(level, 0) for level in SEVERITIES},
        findings_per_kloc=per_kloc(sized_findings, lines),
        findings_per_kloc_interval=None
        if density is None
        else Interval(low=round(density[0], 4), high=round(density[1], 4)),
        issues_per_kloc=per_kloc(sized_issues, lines),
        findings_by_tool=dict(sorted(by_tool.items())),
        top_rules=top(rules),
        top_cwes=top(cwes),
        apps_with_critical_or_high=severe,
        share_with_critical_or_high=round(severe / len(tasks), 6) if tasks else 0.0,
        load=load_figures(runs),
        requirements=requirement_figures(runs),
        only_one_tool=only,
        tool_overlap=overlap,
        score=Score(
            apps_scored=len(scores),
            score=round(mean(scores), 6) if scores else None,
            ci_low=None if low is None else round(low, 6),
            ci_high=None if high is None else round(high, 6),
        ),
    )


def models_report(rows: ReportRows, analysis_type: str | None = None) -> ModelsReport:
    """Every model's figures and, per analysis type, the ranking by score (models without a score are left out)."""
    tasks_of: dict[Key, list[ChosenTask]] = {}
    for task in sorted(rows.tasks, key=lambda t: (t.model_slug, t.analysis_type, t.app_number)):
        tasks_of.setdefault((task.model_slug, task.analysis_type), []).append(task)
    issues_by_task: dict[str, dict[str, int]] = {}
    findings_by_task: Counter[str] = Counter()
    for task_id, severity, issues, findings in rows.issues:
        issues_by_task.setdefault(task_id, {})[severity] = issues
        findings_by_task[task_id] += findings
    models = [
        figures_of(key, tasks, rows, issues_by_task, findings_by_task) for key, tasks in tasks_of.items()
    ]
    rankings: dict[str, list[RankEntry]] = {}
    for figures in sorted(models, key=lambda f: (f.analysis_type, f.score.score or 0.0, f.model_slug)):
        score = figures.score
        if score.score is None or score.ci_low is None or score.ci_high is None:
            continue
        ranked = rankings.setdefault(figures.analysis_type, [])
        ranked.append(
            RankEntry(
                rank=len(ranked) + 1,
                model_slug=figures.model_slug,
                score=score.score,
                ci_low=score.ci_low,
                ci_high=score.ci_high,
            )
        )
    return ModelsReport(
        generated_at=utcnow(),
        analysis_type=analysis_type,
        score_weights=dict(SCORE_WEIGHTS),
        bootstrap_resamples=RESAMPLES,
        confidence_level=LEVEL,
        models=models,
        rankings=rankings,
    )
