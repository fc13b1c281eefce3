"""`GET /api/reports/models`: the model comparison from SQL alone, as JSON, CSV or Markdown."""

from __future__ import annotations

import asyncio

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from services.gateway.auth import requires
from services.gateway.report_figures import ModelsReport, models_report
from services.gateway.report_formats import ReportFormat, report_csv, report_markdown
from services.gateway.report_queries import report_rows
from services.gateway.resources import Resources
from shared.tasks import AnalysisType


@get(
    "/api/reports/models",
    summary="Compare models: findings and issues by severity, per kLOC, per tool, ranking with 95 % intervals",
    description="Each app counts once per analysis type (its latest completed or partial task). `format=csv` gives "
    "one row per model and type, `format=markdown` the rankings and tables.",
    tags=["reports"],
    **requires("read", 422, 503),
)
async def models_comparison(
    resources: NamedDependency[Resources],
    analysis_type: FromQuery[AnalysisType | None] = None,
    format: FromQuery[ReportFormat] = "json",  # noqa: A002 - the query parameter's public name
) -> Response[ModelsReport] | Response[str]:
    rows = await report_rows(resources.sessions, analysis_type)
    report = await asyncio.to_thread(models_report, rows, analysis_type)  # the bootstrap is CPU work
    if format == "csv":
        return Response(report_csv(report), media_type="text/csv; charset=utf-8")
    if format == "markdown":
        return Response(report_markdown(report), media_type="text/markdown; charset=utf-8")
    return Response(report)
