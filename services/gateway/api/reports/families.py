"""Models x weakness: per model, analysis type and weakness family (shared/results/weakness_families.py), how many of its
apps are affected, and how many of those a check confirmed by attack.

An app is affected by a family when one of its findings of that family, in the app's own code (origin `app`) and
not waived by its batch, is at FAMILY_MIN_SEVERITY or worse, or carries a proof. Counts are of apps, not findings:
an app with forty findings of one weakness counts once, as one with a single finding does.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from services.gateway.api.reports.queries import CountedTask
from shared.results.findings import SEVERITIES
from shared.results.waivers import Waivers
from shared.results.weakness_families import Family, family_by_id, weakness_of

FAMILY_MIN_SEVERITY = "medium"
_COUNTED_SEVERITIES = frozenset(SEVERITIES[: SEVERITIES.index(FAMILY_MIN_SEVERITY) + 1])


class AffectedApp(msgspec.Struct, frozen=True, kw_only=True):
    app_number: int
    task_id: str
    findings: int  # of the family, counted as the table counts them
    confirmed: bool  # one of them carries a proof
    weaknesses: list[str]  # the CWEs of the family its findings name


class FamilyRow(msgspec.Struct, frozen=True, kw_only=True):
    """One cell of the heatmap: a model's apps of one analysis type affected by one family."""

    model_slug: str
    analysis_type: str
    family: str  # id
    title: str
    apps: int  # counted apps of the model and type
    apps_affected: int
    apps_confirmed: int
    share_affected: float
    affected: list[AffectedApp]


class FamilyInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    title: str
    cwes: list[str]


def families_of(task: CountedTask) -> dict[str, tuple[Family, int, bool, set[str]]]:
    """Family id -> (family, findings, confirmed, weaknesses) of one app, as the table counts them."""
    waivers = Waivers.of(task.waived_rules)
    found: dict[str, tuple[Family, int, bool, set[str]]] = {}
    for run in task.runs:
        if run.summary is None:
            continue
        for tool, rule, severity, cwe, origin, confirmed, n in run.summary.findings:
            if origin != "app" or (severity not in _COUNTED_SEVERITIES and not confirmed):
                continue
            named, family = weakness_of(tool, rule, cwe)
            if family is None or (waivers and waivers.covers(tool, rule, cwe)):
                continue
            _known, count, proved, names = found.get(family.id, (family, 0, False, set()))
            found[family.id] = (family, count + n, proved or confirmed, names | {named})
    return found


def family_rows(model: str, analysis_type: str, tasks: list[CountedTask]) -> list[FamilyRow]:
    """The model's row of the heatmap for one analysis type: every family at least one of its apps has."""
    per_family: dict[str, tuple[Family, list[AffectedApp]]] = {}
    for task in tasks:
        for family_id, (family, count, confirmed, names) in families_of(task).items():
            app = AffectedApp(
                app_number=task.app_number,
                task_id=task.task_id,
                findings=count,
                confirmed=confirmed,
                weaknesses=sorted(names),
            )
            per_family.setdefault(family_id, (family, []))[1].append(app)
    return [
        FamilyRow(
            model_slug=model,
            analysis_type=analysis_type,
            family=family.id,
            title=family.title,
            apps=len(tasks),
            apps_affected=len(affected),
            apps_confirmed=sum(1 for app in affected if app.confirmed),
            share_affected=round(len(affected) / len(tasks), 6),
            affected=affected,
        )
        for family_id, (family, affected) in sorted(per_family.items())
    ]


def family_infos(rows: Iterable[FamilyRow]) -> list[FamilyInfo]:
    """The families the table has a column for, by how many apps they affect (most first), then by id."""
    affected: dict[str, int] = {}
    titles: dict[str, str] = {}
    for row in rows:
        affected[row.family] = affected.get(row.family, 0) + row.apps_affected
        titles[row.family] = row.title
    ordered = sorted(affected, key=lambda family_id: (-affected[family_id], family_id))
    return [FamilyInfo(id=f, title=titles[f], cwes=list(_cwes(f))) for f in ordered]


def _cwes(family_id: str) -> tuple[str, ...]:
    family = family_by_id(family_id)
    return family.cwes if family is not None else ()
