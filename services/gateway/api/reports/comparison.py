"""Two reports side by side (batch A against batch B): what changed per model.

For each model and analysis type: each verdict share in both and its change, with the apps both batches judged
paired by number (how many went from no to yes, `gained`, and from yes to no, `lost`) and McNemar's exact test of
those changes, Holm-adjusted across the models of one measure and type; the weakness families whose affected apps
changed; the quality figures of both; and, app by app, every verdict that changed.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from services.gateway.api.reports.families import FamilyRow
from services.gateway.api.reports.pairwise import holm, known_answers, mcnemar_exact, paired
from services.gateway.api.reports.quality import QualityFigures
from services.gateway.api.reports.report import ModelsReport, ReportScope
from services.gateway.api.reports.verdict_shares import MEASURES, Share, VerdictRow, share_of

VERDICT_NAMES = ("works", "exploitable", "flagged")


class MeasureChange(msgspec.Struct, frozen=True, kw_only=True):
    measure: str
    base: Share
    head: Share
    change: float | None  # head share - base share
    paired_apps: int  # apps both reports judged (known answers in both)
    gained: int  # no in base, yes in head
    lost: int  # yes in base, no in head
    p_value: float  # McNemar's exact test of gained against lost
    p_adjusted: float  # Holm, across the models of this measure and type
    significant: bool


class FamilyChange(msgspec.Struct, frozen=True, kw_only=True):
    family: str
    title: str
    base_affected: int
    head_affected: int
    change: int


class QualityChange(msgspec.Struct, frozen=True, kw_only=True):
    findings_per_kloc: tuple[float | None, float | None]  # (base, head)
    issues_per_kloc: tuple[float | None, float | None]
    score: tuple[float | None, float | None]


class AppChange(msgspec.Struct, frozen=True, kw_only=True):
    app_number: int
    base_task: str
    head_task: str
    changed: dict[str, tuple[str, str]]  # verdict -> (base answer, head answer)


class ModelChange(msgspec.Struct, frozen=True, kw_only=True):
    model_slug: str
    analysis_type: str
    base_apps: int
    head_apps: int
    measures: list[MeasureChange]
    families: list[FamilyChange]
    quality: QualityChange | None
    app_changes: list[AppChange]


class ReportComparison(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `GET /api/reports/models/compare`."""

    generated_at: datetime
    base: ReportScope  # `against`
    head: ReportScope  # `batch`
    alpha: float
    models: list[ModelChange]


def _measure(measure: str, base: VerdictRow | None, head: VerdictRow | None) -> tuple[MeasureChange, float]:
    base_share = getattr(base, measure) if base else share_of([])
    head_share = getattr(head, measure) if head else share_of([])
    before = known_answers(base, measure) if base else {}
    after = known_answers(head, measure) if head else {}
    pairs, gained, lost = paired(after, before)  # yes only now: gained; yes only before: lost
    change = (
        round(head_share.share - base_share.share, 6)
        if head_share.share is not None and base_share.share is not None
        else None
    )
    p_value = mcnemar_exact(gained, lost)
    return MeasureChange(
        measure=measure, base=base_share, head=head_share, change=change, paired_apps=pairs, gained=gained,
        lost=lost, p_value=round(p_value, 6), p_adjusted=round(p_value, 6), significant=False,
    ), p_value  # fmt: skip


def _families(base: list[FamilyRow], head: list[FamilyRow]) -> list[FamilyChange]:
    before = {row.family: row for row in base}
    after = {row.family: row for row in head}
    changes = []
    for family in sorted(before.keys() | after.keys()):
        old, new = before.get(family), after.get(family)
        title = new.title if new else old.title if old else family
        old_n, new_n = (old.apps_affected if old else 0), (new.apps_affected if new else 0)
        changes.append(
            FamilyChange(
                family=family, title=title, base_affected=old_n, head_affected=new_n, change=new_n - old_n
            )
        )
    return changes


def _quality(base: QualityFigures | None, head: QualityFigures | None) -> QualityChange | None:
    if base is None and head is None:
        return None
    return QualityChange(
        findings_per_kloc=(
            base.findings_per_kloc if base else None,
            head.findings_per_kloc if head else None,
        ),
        issues_per_kloc=(base.issues_per_kloc if base else None, head.issues_per_kloc if head else None),
        score=(base.score.score if base else None, head.score.score if head else None),
    )


def _app_changes(base: VerdictRow | None, head: VerdictRow | None) -> list[AppChange]:
    before = {app.app_number: app for app in (base.app_verdicts if base else [])}
    changes = []
    for app in head.app_verdicts if head else []:
        old = before.get(app.app_number)
        if old is None:
            continue
        changed = {
            name: (getattr(old, name), getattr(app, name))
            for name in VERDICT_NAMES
            if getattr(old, name) != getattr(app, name)
        }
        if changed:
            changes.append(
                AppChange(
                    app_number=app.app_number, base_task=old.task_id, head_task=app.task_id, changed=changed
                )
            )
    return changes


def compare(base: ModelsReport, head: ModelsReport) -> ReportComparison:
    """What changed from `base` to `head`, per model and analysis type present in either."""

    def keyed(rows: list[VerdictRow]) -> dict[tuple[str, str], VerdictRow]:
        return {(row.model_slug, row.analysis_type): row for row in rows}

    old_rows, new_rows = keyed(base.verdicts), keyed(head.verdicts)
    old_quality = {(q.model_slug, q.analysis_type): q for q in base.quality}
    new_quality = {(q.model_slug, q.analysis_type): q for q in head.quality}
    keys = sorted(old_rows.keys() | new_rows.keys())
    measured = {key: [_measure(m, old_rows.get(key), new_rows.get(key)) for m in MEASURES] for key in keys}
    # Holm across the models of one measure and type, as for the pairwise tests of one report.
    for kind in {kind for _model, kind in keys}:
        for index, _measure_name in enumerate(MEASURES):
            group = [key for key in keys if key[1] == kind and measured[key][index][0].paired_apps > 0]
            adjusted = holm([measured[key][index][1] for key in group])
            for key, p in zip(group, adjusted, strict=True):
                change, raw = measured[key][index]
                measured[key][index] = (
                    msgspec.structs.replace(change, p_adjusted=round(p, 6), significant=p < head.alpha),
                    raw,
                )
    models = []
    for key in keys:
        model, kind = key
        models.append(
            ModelChange(
                model_slug=model,
                analysis_type=kind,
                base_apps=old_rows[key].apps if key in old_rows else 0,
                head_apps=new_rows[key].apps if key in new_rows else 0,
                measures=[change for change, _raw in measured[key]],
                families=_families(
                    [r for r in base.families if (r.model_slug, r.analysis_type) == key],
                    [r for r in head.families if (r.model_slug, r.analysis_type) == key],
                ),
                quality=_quality(old_quality.get(key), new_quality.get(key)),
                app_changes=_app_changes(old_rows.get(key), new_rows.get(key)),
            )
        )
    return ReportComparison(generated_at=head.generated_at, base=base.scope, head=head.scope, alpha=head.alpha,
                            models=models)  # fmt: skip
