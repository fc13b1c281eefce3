"""The model comparison as CSV (one row per model and analysis type) and as Markdown (rankings and tables)."""

from __future__ import annotations

import csv
import io

from services.gateway.reports.figures import ModelFigures, ModelsReport
from shared.findings import SEVERITIES

CSV_COLUMNS = [
    "model_slug",
    "analysis_type",
    "apps_analyzed",
    "source_lines",
    "findings",
    "issues",
    *(f"findings_{level}" for level in SEVERITIES),
    *(f"issues_{level}" for level in SEVERITIES),
    "findings_per_kloc",
    "findings_per_kloc_ci_low",
    "findings_per_kloc_ci_high",
    "issues_per_kloc",
    "share_with_critical_or_high",
    "load_p50_ms",
    "load_p99_ms",
    "load_error_rate",
    "requirements_compliance",
    "score",
    "score_ci_low",
    "score_ci_high",
    "rank",
]


def _ranks(report: ModelsReport) -> dict[tuple[str, str], int]:
    return {
        (entry.model_slug, analysis_type): entry.rank
        for analysis_type, entries in report.rankings.items()
        for entry in entries
    }


def _cell(value: float | int | None) -> str:
    return "" if value is None else str(value)


def _density(figures: ModelFigures) -> str:
    interval = figures.findings_per_kloc_interval
    if figures.findings_per_kloc is None or interval is None:
        return ""
    return f"{figures.findings_per_kloc} ({interval.low} – {interval.high})"


def csv_row(figures: ModelFigures, rank: int | None) -> list[str]:
    load, requirements, score = figures.load, figures.requirements, figures.score
    density = figures.findings_per_kloc_interval
    values: list[float | int | None] = [
        figures.apps_analyzed,
        figures.source_lines,
        figures.findings,
        figures.issues,
        *(figures.findings_by_severity[level] for level in SEVERITIES),
        *(figures.issues_by_severity[level] for level in SEVERITIES),
        figures.findings_per_kloc,
        density.low if density else None,
        density.high if density else None,
        figures.issues_per_kloc,
        figures.share_with_critical_or_high,
        load.p50_ms if load else None,
        load.p99_ms if load else None,
        load.error_rate if load else None,
        requirements.compliance if requirements else None,
        score.score,
        score.ci_low,
        score.ci_high,
        rank,
    ]
    return [figures.model_slug, figures.analysis_type, *map(_cell, values)]


def report_csv(report: ModelsReport) -> str:
    ranks = _ranks(report)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for figures in report.models:
        writer.writerow(csv_row(figures, ranks.get((figures.model_slug, figures.analysis_type))))
    return out.getvalue()


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def report_markdown(report: ModelsReport) -> str:
    weights = ", ".join(f"{level} {weight:g}" for level, weight in report.score_weights.items())
    lines = [
        "# Model comparison",
        "",
        f"Score: weighted issues per thousand source lines, mean over apps (lower is better); weights {weights}. "
        f"Interval: {report.confidence_level:.0%} bootstrap over apps ({report.bootstrap_resamples} resamples); "
        "models whose intervals overlap are not shown to differ.",
    ]
    for analysis_type, entries in sorted(report.rankings.items()):
        rows = [
            [str(e.rank), e.model_slug, f"{e.score:.3f}", f"{e.ci_low:.3f} – {e.ci_high:.3f}"]
            for e in entries
        ]
        lines += [
            "",
            f"## Ranking: {analysis_type}",
            "",
            *_md_table(["rank", "model", "score", "95 % CI"], rows),
        ]
    headers = [
        "model",
        "type",
        "apps",
        "findings",
        "issues",
        "critical+high issues",
        "findings/kLOC (95 % CI)",
        "issues/kLOC",
        "apps c/h",
    ]
    rows = [
        [
            f.model_slug,
            f.analysis_type,
            str(f.apps_analyzed),
            str(f.findings),
            str(f.issues),
            str(f.issues_by_severity["critical"] + f.issues_by_severity["high"]),
            _density(f),
            _cell(f.issues_per_kloc),
            f"{f.share_with_critical_or_high:.0%}",
        ]
        for f in report.models
    ]
    lines += ["", "## Findings and issues", "", *_md_table(headers, rows)]
    for f in report.models:
        only = ", ".join(f"{tool} {n}" for tool, n in f.only_one_tool.items()) or "none"
        rules = ", ".join(f"{c.name} ({c.count})" for c in f.top_rules[:5]) or "none"
        lines += [
            "",
            f"**{f.model_slug} / {f.analysis_type}**: top rules {rules}; issues only one tool found: {only}.",
        ]
    return "\n".join(lines) + "\n"
