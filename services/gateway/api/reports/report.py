"""The model comparison, assembled from the rows `reports.queries` reads: plain functions, no I/O.

In the order a reader needs it: the verdicts per model and analysis type (shares with intervals), the pairwise
tests and the ranking they allow, the models x weakness-family table, the quality figures; then what was left out
(tasks that did not complete, tasks not ended yet, tools that did not run in full) and the waived rules the figures
did not count.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from services.gateway.api.reports.confidence import LEVEL, MIN_APPS, RESAMPLES
from services.gateway.api.reports.families import (
    FAMILY_MIN_SEVERITY,
    FamilyInfo,
    FamilyRow,
    family_infos,
    family_rows,
)
from services.gateway.api.reports.pairwise import ALPHA, PairwiseTest, RankEntry, pairwise_tests, ranking
from services.gateway.api.reports.quality import SCORE_WEIGHTS, QualityFigures, quality_figures
from services.gateway.api.reports.queries import CountedTask, OtherTask, ReportRows, Scope
from services.gateway.api.reports.tool_shortfalls import ToolShortfall, tool_shortfalls
from services.gateway.api.reports.verdict_shares import MEASURES, VerdictRow, verdict_row
from shared.wire.messages import TERMINAL_STATUSES, utcnow


class ExcludedRun(msgspec.Struct, frozen=True, kw_only=True):
    """A task in scope that did not complete: counted nowhere. `counted_instead` is the app's older completed task
    the report counts for it (None: the app is not counted for that type at all)."""

    task_id: str
    model_slug: str
    app_number: int
    analysis_type: str
    status: str
    reason: str | None
    counted_instead: str | None


class ReportScope(msgspec.Struct, frozen=True, kw_only=True):
    analysis_type: str | None  # None: every type
    batch: str | None  # None: every task


class ModelsReport(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `GET /api/reports/models`."""

    generated_at: datetime
    scope: ReportScope
    confidence_level: float  # of every interval
    alpha: float  # of the pairwise tests (after Holm's adjustment)
    min_apps: int  # below this many apps no interval is given
    family_min_severity: str  # the families table counts findings at this severity or worse (or confirmed)
    measures: dict[str, str]  # the verdict measures and what each counts
    verdicts: list[VerdictRow]
    pairwise: list[PairwiseTest]
    rankings: dict[str, list[RankEntry]]  # analysis type -> models by their headline share
    families: list[FamilyRow]
    family_columns: list[FamilyInfo]  # the families any counted app has, most affected first
    quality: list[QualityFigures]
    score_weights: dict[str, float]
    bootstrap_resamples: int
    waived_rules: list[str]  # every rule waived by a counted task's batch (none of them counted)
    tools_not_in_full: list[ToolShortfall]  # tools skipped or partial in counted tasks (tool_shortfalls.py)
    excluded: list[ExcludedRun]
    unfinished: int  # tasks in scope not ended yet (pending or running)


Key = tuple[str, str]  # (model, analysis type)


def excluded_runs(counted: list[CountedTask], others: list[OtherTask]) -> list[ExcludedRun]:
    """The ended tasks that did not complete and are newer than what their app counts with (or it counts none)."""
    newest = {(t.model_slug, t.app_number, t.analysis_type): t for t in counted}
    excluded = []
    for other in sorted(others, key=lambda o: (o.model_slug, o.analysis_type, o.app_number, o.created_at)):
        if other.status not in TERMINAL_STATUSES:
            continue
        instead = newest.get((other.model_slug, other.app_number, other.analysis_type))
        if instead is not None and instead.created_at >= other.created_at:
            continue  # an older failure the app has completed since: not part of what is reported
        excluded.append(
            ExcludedRun(
                task_id=other.task_id,
                model_slug=other.model_slug,
                app_number=other.app_number,
                analysis_type=other.analysis_type,
                status=other.status,
                reason=other.status_reason,
                counted_instead=instead.task_id if instead is not None else None,
            )
        )
    return excluded


def models_report(rows: ReportRows, scope: Scope, alpha: float = ALPHA) -> ModelsReport:
    """Every section of the comparison of the rows' counted tasks."""
    tasks_of: dict[Key, list[CountedTask]] = {}
    for task in rows.tasks:
        tasks_of.setdefault((task.model_slug, task.analysis_type), []).append(task)
    verdicts = [verdict_row(model, kind, tasks) for (model, kind), tasks in sorted(tasks_of.items())]
    types = sorted({kind for _model, kind in tasks_of})
    pairwise: list[PairwiseTest] = []
    rankings: dict[str, list[RankEntry]] = {}
    for kind in types:
        of_type = [row for row in verdicts if row.analysis_type == kind]
        tests = pairwise_tests(kind, of_type, alpha)
        pairwise += tests
        ranked = ranking(of_type, tests)
        if ranked:
            rankings[kind] = ranked
    families = [
        row for (model, kind), tasks in sorted(tasks_of.items()) for row in family_rows(model, kind, tasks)
    ]
    return ModelsReport(
        generated_at=utcnow(),
        scope=ReportScope(analysis_type=scope.analysis_type, batch=scope.batch),
        confidence_level=LEVEL,
        alpha=alpha,
        min_apps=MIN_APPS,
        family_min_severity=FAMILY_MIN_SEVERITY,
        measures=dict(MEASURES),
        verdicts=verdicts,
        pairwise=pairwise,
        rankings=rankings,
        families=families,
        family_columns=family_infos(families),
        quality=[quality_figures(model, kind, tasks) for (model, kind), tasks in sorted(tasks_of.items())],
        score_weights=dict(SCORE_WEIGHTS),
        bootstrap_resamples=RESAMPLES,
        waived_rules=sorted({rule for task in rows.tasks for rule in task.waived_rules}),
        tools_not_in_full=tool_shortfalls(rows.tasks, rows.short_tool_runs),
        excluded=excluded_runs(rows.tasks, rows.others),
        unfinished=sum(1 for other in rows.others if other.status not in TERMINAL_STATUSES),
    )
