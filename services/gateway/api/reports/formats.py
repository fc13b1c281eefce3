"""The model comparison (and the comparison of two reports) as CSV: every figure of the JSON answer, one per row.

Long form, so that one file holds every table: `section, analysis_type, model_slug, subject, field, value`. A
section is a table of the JSON answer (`verdicts`, `verdict_apps`, `pairwise`, `rankings`, `families`,
`family_apps`, `family_columns`, `quality`, `tools_not_in_full`, `excluded`, and `report` for the answer's own settings); `subject` names
the row within it (an app, a pair of models, a family, a task); `field` is the figure's path in the JSON entry
(`works.interval.low`), lists of plain values are joined with `;`. A spreadsheet's pivot on (model, field) gives
back each table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import msgspec

from services.gateway.api.reports.comparison import ReportComparison
from services.gateway.api.reports.report import ModelsReport

CSV_COLUMNS = ["section", "analysis_type", "model_slug", "subject", "field", "value"]
KEYS = ("analysis_type", "model_slug")
Row = list[str]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flatten(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, text) of every plain value inside `value` (builtins): dicts by key, lists of dicts by index."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from flatten(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        for index, inner in enumerate(value):
            yield from flatten(inner, f"{path}.{index}")
    elif isinstance(value, list):
        yield path, ";".join(_cell(item) for item in value)
    else:
        yield path, _cell(value)


def section_rows(
    section: str, entry: dict[str, Any], subject: str = "", keys: dict[str, Any] | None = None
) -> Iterator[Row]:
    """One entry of a section: its key fields in their columns, every other figure a row."""
    named = {**{key: entry.get(key) for key in KEYS}, **(keys or {})}
    rest = {name: value for name, value in entry.items() if name not in KEYS}
    for field, text in flatten(rest):
        yield [section, _cell(named["analysis_type"]), _cell(named["model_slug"]), subject, field, text]


def report_rows(report: ModelsReport) -> Iterator[Row]:
    """Every figure of a report as CSV rows."""
    answer = msgspec.to_builtins(report)
    settings = {name: value for name, value in answer.items() if not isinstance(value, list | dict)}
    settings |= {
        "scope": answer["scope"],
        "measures": answer["measures"],
        "score_weights": answer["score_weights"],
    }
    settings |= {"waived_rules": answer["waived_rules"]}
    yield from section_rows("report", settings)
    for row in answer["verdicts"]:
        apps = row.pop("app_verdicts")
        yield from section_rows("verdicts", row)
        for app in apps:
            yield from section_rows("verdict_apps", app, f"app{app['app_number']}", row)
    for test in answer["pairwise"]:
        subject = f"{test['measure']}: {test['model_a']} vs {test['model_b']}"
        yield from section_rows("pairwise", test, subject, {"model_slug": None})
    for kind, entries in answer["rankings"].items():
        for entry in entries:
            yield from section_rows("rankings", entry, f"rank {entry['rank']}", {"analysis_type": kind})
    for row in answer["families"]:
        affected = row.pop("affected")
        yield from section_rows("families", row, row["family"])
        for app in affected:
            yield from section_rows("family_apps", app, f"{row['family']} app{app['app_number']}", row)
    for column in answer["family_columns"]:
        yield from section_rows("family_columns", column, column["id"])
    for figures in answer["quality"]:
        yield from section_rows("quality", figures)
    for shortfall in answer["tools_not_in_full"]:
        subject = f"{shortfall['service']}/{shortfall['tool']} {shortfall['status']}"
        yield from section_rows("tools_not_in_full", shortfall, subject, {"model_slug": None})
    for run in answer["excluded"]:
        yield from section_rows("excluded", run, run["task_id"])


def comparison_rows(comparison: ReportComparison) -> Iterator[Row]:
    """Every figure of a comparison as CSV rows (sections `comparison`, `measures`, `families`, `quality`,
    `app_changes`)."""
    answer = msgspec.to_builtins(comparison)
    yield from section_rows("comparison", {"generated_at": answer["generated_at"], "alpha": answer["alpha"],
                                           "base": answer["base"], "head": answer["head"]})  # fmt: skip
    for model in answer["models"]:
        keys = {"analysis_type": model["analysis_type"], "model_slug": model["model_slug"]}
        counts = {"base_apps": model["base_apps"], "head_apps": model["head_apps"]}
        yield from section_rows("models", counts, "", keys)
        for change in model["measures"]:
            yield from section_rows("measures", change, change["measure"], keys)
        for family in model["families"]:
            yield from section_rows("families", family, family["family"], keys)
        if model["quality"] is not None:
            yield from section_rows("quality", model["quality"], "", keys)
        for app in model["app_changes"]:
            yield from section_rows("app_changes", app, f"app{app['app_number']}", keys)


def as_csv(rows: Iterator[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


def report_csv(report: ModelsReport) -> str:
    return as_csv(report_rows(report))


def comparison_csv(comparison: ReportComparison) -> str:
    return as_csv(comparison_rows(comparison))
