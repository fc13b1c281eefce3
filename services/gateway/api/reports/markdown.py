"""The model comparison (and the comparison of two reports) as Markdown: the same figures as the JSON answer, as
tables a person reads in order: verdicts, significance, ranking, weakness families, the apps behind them, quality,
the tools that did not run in full, and what was left out."""

from __future__ import annotations

from collections.abc import Iterable

from services.gateway.api.reports.comparison import ModelChange, ReportComparison
from services.gateway.api.reports.families import FamilyRow
from services.gateway.api.reports.pairwise import PairwiseTest
from services.gateway.api.reports.quality import QualityFigures
from services.gateway.api.reports.report import ModelsReport, ReportScope
from services.gateway.api.reports.verdict_shares import MEASURES, Share, VerdictRow


def table(headers: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def _value(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def share_text(share: Share) -> str:
    """`7/9 = 78 % (45–94 %)`, with the unknown answers and a missing interval said."""
    if share.share is None:
        text = "no known answer"
    else:
        text = f"{share.yes}/{share.known} = {share.share:.0%}"
        text += (
            f" ({share.interval.low:.0%}–{share.interval.high:.0%})" if share.interval else " (too few apps)"
        )
    return text + (f", {share.unknown} unknown" if share.unknown else "")


def scope_text(scope: ReportScope) -> str:
    batch = f"batch {scope.batch}" if scope.batch else "every task"
    return f"{batch}, {scope.analysis_type or 'every analysis type'}"


def _verdict_section(kind: str, rows: list[VerdictRow]) -> list[str]:
    body = [[row.model_slug, str(row.apps), *(share_text(getattr(row, m)) for m in MEASURES)] for row in rows]
    return ["", f"## Verdicts: {kind}", "", *table(["model", "apps", *MEASURES.values()], body)]


def _pairwise_section(kind: str, tests: list[PairwiseTest], alpha: float) -> list[str]:
    if not tests:
        return ["", f"## Pairwise tests: {kind}", "", "No two models share an app with a known answer."]
    body = [
        [t.measure, t.model_a, t.model_b, str(t.pairs), str(t.a_only), str(t.b_only), _value(t.p_value, 4),
         _value(t.p_adjusted, 4), f"yes: {t.better} better" if t.significant else "no"]
        for t in tests
    ]  # fmt: skip
    headers = [
        "measure",
        "model a",
        "model b",
        "pairs",
        "a only",
        "b only",
        "p",
        "p (Holm)",
        f"below {alpha}",
    ]
    return ["", f"## Pairwise tests: {kind}", "", *table(headers, body)]


def _ranking_section(report: ModelsReport, kind: str) -> list[str]:
    entries = report.rankings.get(kind) or []
    if not entries:
        return []
    body = [
        [str(e.rank), e.model_slug, f"{e.share:.0%}",
         f"{e.interval.low:.0%}–{e.interval.high:.0%}" if e.interval else "too few apps", str(e.known),
         ", ".join(e.better_than) or "–", ", ".join(e.not_distinguished_from) or "–"]
        for e in entries
    ]  # fmt: skip
    headers = [
        "rank",
        "model",
        "share",
        "95 % interval",
        "apps",
        "significantly better than",
        "not told apart from",
    ]
    title = f"## Ranking: {kind}, by {MEASURES[entries[0].measure]}"
    return ["", title, "", *table(headers, body)]


def _families_section(report: ModelsReport, kind: str) -> list[str]:
    rows = [row for row in report.families if row.analysis_type == kind]
    models = sorted({row.model_slug for row in report.verdicts if row.analysis_type == kind})
    columns = [column for column in report.family_columns if any(row.family == column.id for row in rows)]
    if not columns:
        return ["", f"## Weakness families: {kind}", "", "No app has a finding of a weakness family."]
    cells = {(row.model_slug, row.family): row for row in rows}

    def cell(model: str, family: str) -> str:
        found = cells.get((model, family))
        return f"{found.apps_affected} ({found.apps_confirmed})" if found else "0"

    body = [[model, *(cell(model, column.id) for column in columns)] for model in models]
    note = (
        f"Apps affected (of them confirmed by attack): a finding of the family at {report.family_min_severity} or "
        "worse, or with a proof, in the app's own code."
    )
    return [
        "",
        f"## Weakness families: {kind}",
        "",
        note,
        "",
        *table(["model", *(c.id for c in columns)], body),
    ]


def _apps_sections(report: ModelsReport) -> list[str]:
    verdict_rows = [
        [row.model_slug, row.analysis_type, str(app.app_number), app.task_id, app.works, app.exploitable, app.flagged]
        for row in report.verdicts
        for app in row.app_verdicts
    ]  # fmt: skip
    lines = ["", "## Apps behind the verdicts", ""]
    lines += table(["model", "type", "app", "task", "works", "exploitable", "flagged"], verdict_rows)
    family_rows = [_family_apps(row) for row in report.families]
    if family_rows:
        lines += [
            "",
            "## Apps behind the weakness families",
            "",
            *table(["model", "type", "family", "apps"], family_rows),
        ]
    return lines


def _family_apps(row: FamilyRow) -> list[str]:
    apps = ", ".join(f"app{a.app_number}{' (confirmed)' if a.confirmed else ''}" for a in row.affected)
    return [row.model_slug, row.analysis_type, row.family, apps]


def _quality_row(q: QualityFigures) -> list[str]:
    density = _value(q.findings_per_kloc, 2)
    if q.findings_per_kloc_interval:
        density += f" ({q.findings_per_kloc_interval.low:.2f}–{q.findings_per_kloc_interval.high:.2f})"
    score = _value(q.score.score, 2)
    score += (
        f" ({q.score.ci_low:.2f}–{q.score.ci_high:.2f})"
        if q.score.ci_low is not None and q.score.ci_high is not None
        else ""
    )
    left = [f"{origin} {n}" for origin, n in q.left_out.by_origin.items()] + (
        [f"waived {q.left_out.waived}"] if q.left_out.waived else []
    )
    return [
        q.model_slug, q.analysis_type, str(q.apps_analyzed), str(q.findings), str(q.issues),
        str(q.issues_by_severity["critical"] + q.issues_by_severity["high"]), density, _value(q.issues_per_kloc, 2),
        score, _value(q.running_app_findings_per_app, 2), ", ".join(left) or "–",
    ]  # fmt: skip


def _quality_section(report: ModelsReport) -> list[str]:
    headers = ["model", "type", "apps", "findings", "issues", "critical+high issues", "findings/kLOC",
               "issues/kLOC", "score", "running-app findings per app", "left out"]  # fmt: skip
    lines = [
        "",
        "## Quality (source findings in the app's own code, per thousand lines; not a ranking)",
        "",
        "Score: weighted issues per thousand lines, mean over apps (weights "
        + ", ".join(f"{level} {weight:g}" for level, weight in report.score_weights.items())
        + "). Findings about the running app are counted per app, never per line.",
        "",
        *table(headers, map(_quality_row, report.quality)),
    ]
    for q in report.quality:
        rules = ", ".join(f"{c.name} ({c.count})" for c in q.top_rules[:5]) or "none"
        only = ", ".join(f"{tool} {n}" for tool, n in q.only_one_tool.items()) or "none"
        lines += [
            "",
            f"**{q.model_slug} / {q.analysis_type}**: top rules {rules}; issues only one tool found: {only}.",
        ]
    return lines


def _left_out_section(report: ModelsReport) -> list[str]:
    lines = ["", "## Runs left out", ""]
    if report.excluded:
        body = [
            [r.task_id, r.model_slug, str(r.app_number), r.analysis_type, r.status, r.reason or "–", r.counted_instead or "–"]
            for r in report.excluded
        ]  # fmt: skip
        lines += table(["task", "model", "app", "type", "status", "reason", "counted instead"], body)
    else:
        lines.append("None: every ended task in scope completed.")
    lines += ["", f"Tasks not ended yet: {report.unfinished}."]
    return lines


def _tools_section(report: ModelsReport) -> list[str]:
    lines = ["", "## Tools that did not run in full", ""]
    if not report.tools_not_in_full:
        return [*lines, "None: every tool of the counted tasks ran in full."]
    body = [
        [s.analysis_type, f"{s.tool} ({s.service})", f"{s.status} in {s.tasks} of {s.of_tasks} tasks", "; ".join(s.reasons)]
        for s in report.tools_not_in_full
    ]  # fmt: skip
    note = "The figures above rest on what these tools did cover: a skipped tool found nothing, whatever the apps have."
    return [*lines, note, "", *table(["type", "tool", "did not run in full", "reasons"], body)]


def report_markdown(report: ModelsReport) -> str:
    level = f"{report.confidence_level:.0%}"
    lines = [
        "# Model comparison",
        "",
        f"Scope: {scope_text(report.scope)}. Each app counts once per analysis type, with its newest completed task.",
        f"Shares of apps with a known answer, with Wilson's {level} interval; below {report.min_apps} apps no "
        f"interval (too few apps). Pairwise: McNemar's exact test over apps paired by number, Holm-adjusted, "
        f"significant below {report.alpha}.",
        f"Waived rules (counted nowhere): {', '.join(report.waived_rules) or 'none'}.",
    ]
    for kind in sorted({row.analysis_type for row in report.verdicts}):
        rows = [row for row in report.verdicts if row.analysis_type == kind]
        lines += _verdict_section(kind, rows)
        lines += _pairwise_section(
            kind, [t for t in report.pairwise if t.analysis_type == kind], report.alpha
        )
        lines += _ranking_section(report, kind)
        lines += _families_section(report, kind)
    if not report.verdicts:
        lines += ["", "No completed task in scope: nothing to compare."]
    lines += (
        _apps_sections(report) + _quality_section(report) + _tools_section(report) + _left_out_section(report)
    )
    return "\n".join(lines) + "\n"


def _change_rows(model: ModelChange) -> list[list[str]]:
    return [
        [model.model_slug, model.analysis_type, MEASURES[c.measure], share_text(c.base), share_text(c.head),
         f"{c.change:+.0%}" if c.change is not None else "–", f"+{c.gained} / -{c.lost} of {c.paired_apps}",
         _value(c.p_adjusted, 4), "yes" if c.significant else "no"]
        for c in model.measures
    ]  # fmt: skip


def comparison_markdown(comparison: ReportComparison) -> str:
    lines = [
        "# What changed",
        "",
        f"From {scope_text(comparison.base)} (base) to {scope_text(comparison.head)}. Paired apps: those both "
        f"judged; McNemar's exact test of gained against lost, Holm-adjusted, significant below {comparison.alpha}.",
        "",
        *table(
            [
                "model",
                "type",
                "measure",
                "base",
                "head",
                "change",
                "apps gained / lost",
                "p (Holm)",
                "significant",
            ],
            [row for model in comparison.models for row in _change_rows(model)],
        ),
    ]
    families = [
        [
            m.model_slug,
            m.analysis_type,
            f.family,
            str(f.base_affected),
            str(f.head_affected),
            f"{f.change:+d}",
        ]
        for m in comparison.models
        for f in m.families
        if f.change
    ]
    lines += ["", "## Weakness families that changed", ""]
    lines += (
        table(["model", "type", "family", "base apps", "head apps", "change"], families)
        if families
        else ["None."]
    )
    apps = [
        [m.model_slug, m.analysis_type, str(a.app_number), a.base_task, a.head_task,
         "; ".join(f"{name} {old} → {new}" for name, (old, new) in a.changed.items())]
        for m in comparison.models
        for a in m.app_changes
    ]  # fmt: skip
    lines += ["", "## Apps whose verdicts changed", ""]
    lines += table(["model", "type", "app", "base task", "head task", "changed"], apps) if apps else ["None."]
    quality = [
        [m.model_slug, m.analysis_type, *(f"{_value(old, 2)} → {_value(new, 2)}" for old, new in
                                          (m.quality.findings_per_kloc, m.quality.issues_per_kloc, m.quality.score))]
        for m in comparison.models
        if m.quality is not None
    ]  # fmt: skip
    lines += [
        "",
        "## Quality",
        "",
        *table(["model", "type", "findings/kLOC", "issues/kLOC", "score"], quality),
    ]
    return "\n".join(lines) + "\n"
