"""`GET /api/reports/models` (JSON), `/api/reports/models.csv` and `/api/reports/models.md`: the model comparison
from SQL alone. One path per format, so each documents the one content type it answers with."""

from __future__ import annotations

import asyncio

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from services.gateway.auth import requires
from services.gateway.reports.figures import ModelsReport, models_report
from services.gateway.reports.formats import report_csv, report_markdown
from services.gateway.reports.queries import report_rows
from services.gateway.resources import Resources
from shared.tasks import AnalysisType

DESCRIPTION = (
    "Each app counts once per analysis type (its latest completed or partial task). Figures per model and type: "
    "findings and issues by severity, per kLOC, per tool, top rules and CWEs, load test, requirement compliance, "
    "tool effectiveness, and the ranking by a weighted score with a 95 % bootstrap interval over apps."
)


async def comparison(resources: Resources, analysis_type: AnalysisType | None) -> ModelsReport:
    rows = await report_rows(resources.sessions, analysis_type)
    return await asyncio.to_thread(models_report, rows, analysis_type)  # the bootstrap is CPU work


@get(
    "/api/reports/models",
    summary="Compare models (JSON)",
    description=DESCRIPTION,
    tags=["reports"],
    **requires("read", 422, 503),
)
async def models_comparison(
    resources: NamedDependency[Resources], analysis_type: FromQuery[AnalysisType | None] = None
) -> ModelsReport:
    return await comparison(resources, analysis_type)


@get(
    "/api/reports/models.csv",
    summary="Compare models (CSV: one row per model and analysis type)",
    description=DESCRIPTION,
    tags=["reports"],
    media_type="text/csv",
    **requires("read", 422, 503),
)
async def models_comparison_csv(
    resources: NamedDependency[Resources], analysis_type: FromQuery[AnalysisType | None] = None
) -> Response[str]:
    report = await comparison(resources, analysis_type)
    return Response(report_csv(report), media_type="text/csv; charset=utf-8")


@get(
    "/api/reports/models.md",
    summary="Compare models (Markdown: rankings and tables)",
    description=DESCRIPTION,
    tags=["reports"],
    media_type="text/markdown",
    **requires("read", 422, 503),
)
async def models_comparison_markdown(
    resources: NamedDependency[Resources], analysis_type: FromQuery[AnalysisType | None] = None
) -> Response[str]:
    report = await comparison(resources, analysis_type)
    return Response(report_markdown(report), media_type="text/markdown; charset=utf-8")
