"""The quality figures of the model comparison: a table of its own, after the verdicts and the weakness families.

Per model and analysis type, from the findings about source code (the static analyzer's) in the app's own code
(origin `app`), without the rules its batch waived: findings and distinct issues by severity, per thousand lines
(findings per thousand lines with a bootstrap interval over apps), per tool, top rules and CWEs, the share of apps
with a critical or high issue, the tools' overlap, and the **score** (per app with a known size, issues weighted
critical 10, high 5, medium 2, low 1, info 0, per thousand lines; the mean over apps, with its bootstrap interval).
Findings about the running app (one per missing header, say) are the same for a small app and a large one: they
are counted per app, never divided by source size. The load test and the requirements review come from their
tools' metrics. Below MIN_APPS apps no interval is given. What was left out, and why, is counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import msgspec

from services.gateway.api.reports.confidence import (
    MIN_APPS,
    TOO_FEW,
    bootstrap_interval,
    mean,
    ratio_interval,
)
from services.gateway.api.reports.queries import CountedTask
from services.gateway.api.reports.verdict_shares import Interval
from shared.results.findings import SEVERITIES
from shared.results.waivers import Waivers
from shared.results.weakness_families import weakness_of

SCORE_WEIGHTS: dict[str, float] = {"critical": 10.0, "high": 5.0, "medium": 2.0, "low": 1.0, "info": 0.0}
TOP = 10  # rules and CWEs listed per model
LOAD_TOOL, REQUIREMENTS_TOOL = "load", "requirements-review"
SOURCE_SERVICES = frozenset({"static"})  # whose findings point at source lines, so may be divided by them
RUNNING_APP_SERVICES = frozenset({"dynamic"})  # whose findings are about the running app: counted per app


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


class Score(msgspec.Struct, frozen=True, kw_only=True):
    apps_scored: int  # apps with a known size
    score: float | None
    ci_low: float | None  # None below MIN_APPS apps scored
    ci_high: float | None
    note: str | None = None


class LeftOut(msgspec.Struct, frozen=True, kw_only=True):
    """Findings the figures did not count, and why."""

    by_origin: dict[str, int]  # not the app's own code: vendored, generated, minified, test
    waived: int  # of rules the batch waived
    # of analyzers whose findings point at no source line (the running app, a review): never divided by lines
    by_service: dict[str, int]


class QualityFigures(msgspec.Struct, frozen=True, kw_only=True):
    model_slug: str
    analysis_type: str
    apps_analyzed: int
    source_lines: int  # of the apps with a known size
    findings: int
    issues: int
    findings_by_severity: dict[str, int]
    issues_by_severity: dict[str, int]
    findings_per_kloc: float | None
    findings_per_kloc_interval: Interval | None  # bootstrap over apps (each app's findings with its lines)
    issues_per_kloc: float | None
    findings_by_tool: dict[str, int]
    top_rules: list[Count]  # `<tool>:<rule>`, by findings
    top_cwes: list[Count]  # by findings, each finding's weakness (shared/results/issue_groups)
    apps_with_critical_or_high: int
    share_with_critical_or_high: float
    running_app_findings_per_app: float | None  # mean over the apps whose running app was checked
    load: LoadFigures | None
    requirements: RequirementFigures | None
    only_one_tool: dict[str, int]  # tool -> issues no other tool found
    tool_overlap: list[ToolOverlap]
    score: Score
    left_out: LeftOut


@dataclass
class _AppCounts:
    """One app's counted findings and issues."""

    findings: int = 0
    issues: Counter[str] = field(default_factory=Counter)  # by severity


@dataclass
class _Tally:
    """What a model's apps of one type add up to."""

    kinds: Counter[tuple[str, str, str, str | None]] = field(
        default_factory=Counter
    )  # (tool, rule, severity, cwe)
    group_rules: Counter[str] = field(
        default_factory=Counter
    )  # an issue's `tool:rule`s, comma-joined -> issues
    by_origin: Counter[str] = field(default_factory=Counter)
    waived: int = 0
    by_service: Counter[str] = field(default_factory=Counter)
    running_apps: int = 0

    def add(self, task: CountedTask) -> _AppCounts:
        """Count one app's source findings and issues (returned), and note what is left out."""
        waivers = Waivers.of(task.waived_rules)
        app = _AppCounts()
        checked_running = False
        for run in task.runs:
            summary = run.summary
            if summary is None:
                continue
            source = run.service in SOURCE_SERVICES
            checked_running = checked_running or run.service in RUNNING_APP_SERVICES
            for tool, rule, severity, cwe, origin, _proved, n in summary.findings:
                if origin != "app":
                    self.by_origin[origin] += n
                elif waivers and waivers.covers(tool, rule, cwe):
                    self.waived += n
                elif not source:
                    self.by_service[run.service] += n
                else:
                    app.findings += n
                    self.kinds[(tool, rule, severity, cwe)] += n
            if not source:
                continue
            for named, severity, origin, _proved, rules, issues, _found in summary.groups:
                if origin != "app" or (
                    waivers and waivers.covers_group(named, filter(None, rules.split(",")))
                ):
                    continue
                app.issues[severity] += issues
                self.group_rules[rules] += issues
        self.running_apps += checked_running
        return app

    def counts(self) -> tuple[Counter[str], Counter[str], Counter[str], Counter[str]]:
        """Findings by severity, by tool, by `tool:rule` and by CWE (a rule's weakness, shared/results/issue_groups)."""
        by_severity: Counter[str] = Counter()
        by_tool: Counter[str] = Counter()
        rules: Counter[str] = Counter()
        cwes: Counter[str] = Counter()
        for (tool, rule, severity, cwe), n in self.kinds.items():
            by_severity[severity] += n
            by_tool[tool] += n
            rules[f"{tool}:{rule}"] += n
            named, _family = weakness_of(
                tool, rule, cwe
            )  # the mapping table gives a CWE to rules naming none
            if named.startswith("CWE-"):
                cwes[named] += n
        return by_severity, by_tool, rules, cwes

    def tool_sets(self) -> Counter[tuple[str, ...]]:
        """Issues per set of tools that found them (issues written before rules were kept have none)."""
        sets: Counter[tuple[str, ...]] = Counter()
        for rules, issues in self.group_rules.items():
            if rules:
                sets[tuple(sorted({rule.split(":", 1)[0] for rule in rules.split(",")}))] += issues
        return sets


def per_kloc(count: int, lines: int) -> float | None:
    return round(count * 1000.0 / lines, 4) if lines > 0 else None


def app_score(issues: Counter[str], lines: int) -> float:
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


def _score(model: str, analysis_type: str, sized: list[tuple[CountedTask, _AppCounts]]) -> Score:
    scores = [app_score(counts.issues, task.source_lines or 0) for task, counts in sized]
    if not scores:
        return Score(apps_scored=0, score=None, ci_low=None, ci_high=None, note="no app of a known size")
    score = round(mean(scores), 6)
    if len(scores) < MIN_APPS:
        return Score(apps_scored=len(scores), score=score, ci_low=None, ci_high=None, note=TOO_FEW)
    low, high = bootstrap_interval(scores, seed=f"{model}\x1f{analysis_type}")
    return Score(apps_scored=len(scores), score=score, ci_low=round(low, 6), ci_high=round(high, 6))


def _density(model: str, analysis_type: str, sized: list[tuple[CountedTask, _AppCounts]]) -> Interval | None:
    if len(sized) < MIN_APPS:
        return None
    low, high = ratio_interval(
        [counts.findings * 1000.0 for _task, counts in sized],
        [float(task.source_lines or 0) for task, _counts in sized],
        seed=f"{model}\x1f{analysis_type}\x1ffindings",
    )
    return Interval(low=round(low, 4), high=round(high, 4))


def quality_figures(model: str, analysis_type: str, tasks: list[CountedTask]) -> QualityFigures:
    """The quality table's row of one model's apps of one analysis type."""
    tally = _Tally()
    apps = [tally.add(task) for task in tasks]
    by_severity, by_tool, rules, cwes = tally.counts()
    issues_by_severity: Counter[str] = Counter()
    for counts in apps:
        issues_by_severity.update(counts.issues)
    sized = [(task, counts) for task, counts in zip(tasks, apps, strict=True) if task.source_lines]
    lines = sum(task.source_lines or 0 for task, _counts in sized)
    severe = sum(1 for counts in apps if counts.issues["critical"] + counts.issues["high"] > 0)
    metrics = [run.metrics for task in tasks for run in task.runs if run.metrics]
    running = sum(tally.by_service[service] for service in RUNNING_APP_SERVICES)
    only, overlap = tool_effectiveness(tally.tool_sets())
    return QualityFigures(
        model_slug=model,
        analysis_type=analysis_type,
        apps_analyzed=len(tasks),
        source_lines=lines,
        findings=sum(by_severity.values()),
        issues=sum(issues_by_severity.values()),
        findings_by_severity={level: by_severity.get(level, 0) for level in SEVERITIES},
        issues_by_severity={level: issues_by_severity.get(level, 0) for level in SEVERITIES},
        findings_per_kloc=per_kloc(sum(counts.findings for _task, counts in sized), lines),
        findings_per_kloc_interval=_density(model, analysis_type, sized),
        issues_per_kloc=per_kloc(sum(sum(counts.issues.values()) for _task, counts in sized), lines),
        findings_by_tool=dict(sorted(by_tool.items())),
        top_rules=top(rules),
        top_cwes=top(cwes),
        apps_with_critical_or_high=severe,
        share_with_critical_or_high=round(severe / len(tasks), 6) if tasks else 0.0,
        running_app_findings_per_app=round(running / tally.running_apps, 4) if tally.running_apps else None,
        load=load_figures(metrics),
        requirements=requirement_figures(metrics),
        only_one_tool=only,
        tool_overlap=overlap,
        score=_score(model, analysis_type, sized),
        left_out=LeftOut(by_origin=dict(sorted(tally.by_origin.items())), waived=tally.waived,
                         by_service=dict(sorted(tally.by_service.items()))),
    )  # fmt: skip
