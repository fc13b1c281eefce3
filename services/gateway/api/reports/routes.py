"""The model comparison's routes, from SQL alone: `GET /api/reports/models` (`?format=json|csv|markdown`; the paths
`models.csv` and `models.md` answer the same), and `GET /api/reports/models/compare` (batch A against batch B)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from litestar import Response, Router, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from services.gateway.answer_formats import ReportFormat, media_type
from services.gateway.api.reports.comparison import ReportComparison, compare
from services.gateway.api.reports.formats import comparison_csv, report_csv
from services.gateway.api.reports.markdown import comparison_markdown, report_markdown
from services.gateway.api.reports.pairwise import ALPHA
from services.gateway.api.reports.queries import Scope, report_rows
from services.gateway.api.reports.report import ModelsReport, models_report
from services.gateway.auth import requires
from services.gateway.resources import Resources
from shared.wire.messages import BATCH_ID_PATTERN
from shared.wire.tasks import AnalysisType

DESCRIPTION = (
    "Each app counts once per analysis type, with its newest completed task (those that ended otherwise are listed "
    "under `excluded`). First the verdicts: per model and type, the share of apps that work, that are not "
    "exploitable, that are both, and that are not flagged, with Wilson intervals (none below `min_apps`); the "
    "pairwise McNemar tests (Holm-adjusted) and the ranking they allow; the models x weakness-family table; then "
    "the quality figures (app code only, per kLOC of source). `batch` limits it to one batch."
)
BatchQuery = Annotated[
    str | None, QueryParameter(pattern=BATCH_ID_PATTERN, description="only the tasks of this batch")
]
AlphaQuery = Annotated[
    float,
    QueryParameter(gt=0.0, le=0.5, description="significance level of the pairwise tests (default 0.05)"),
]
T = TypeVar("T")


def answered(value: T, answer_format: str, renderers: dict[str, Callable[[T], str]]) -> Response[Any]:
    """The value as JSON, or rendered as the text format asked for, with its media type."""
    if answer_format == "json":
        return Response(value)
    return Response(renderers[answer_format](value), media_type=media_type(answer_format))


async def comparison_of(resources: Resources, scope: Scope, alpha: float) -> ModelsReport:
    rows = await report_rows(resources.sessions, scope)
    return await asyncio.to_thread(models_report, rows, scope, alpha)  # the bootstrap is CPU work


def _report(report: ModelsReport, answer_format: str) -> Response[Any]:
    return answered(report, answer_format, {"csv": report_csv, "markdown": report_markdown})


@get("/api/reports/models", summary="Compare models", description=DESCRIPTION, tags=["reports"],
     **requires("read", 422, 503))  # fmt: skip
async def models_comparison(
    resources: NamedDependency[Resources],
    analysis_type: FromQuery[AnalysisType | None] = None,
    batch: BatchQuery = None,
    alpha: AlphaQuery = ALPHA,
    format: FromQuery[ReportFormat] = "json",
) -> Response[ModelsReport]:
    return _report(await comparison_of(resources, Scope(analysis_type, batch), alpha), format)


@get("/api/reports/models.csv", summary="Compare models (CSV, as `?format=csv`)", description=DESCRIPTION,
     tags=["reports"], media_type="text/csv", **requires("read", 422, 503))  # fmt: skip
async def models_comparison_csv(
    resources: NamedDependency[Resources],
    analysis_type: FromQuery[AnalysisType | None] = None,
    batch: BatchQuery = None,
    alpha: AlphaQuery = ALPHA,
) -> Response[str]:
    return _report(await comparison_of(resources, Scope(analysis_type, batch), alpha), "csv")


@get("/api/reports/models.md", summary="Compare models (Markdown, as `?format=markdown`)", description=DESCRIPTION,
     tags=["reports"], media_type="text/markdown", **requires("read", 422, 503))  # fmt: skip
async def models_comparison_markdown(
    resources: NamedDependency[Resources],
    analysis_type: FromQuery[AnalysisType | None] = None,
    batch: BatchQuery = None,
    alpha: AlphaQuery = ALPHA,
) -> Response[str]:
    return _report(await comparison_of(resources, Scope(analysis_type, batch), alpha), "markdown")


@get(
    "/api/reports/models/compare",
    summary="What changed per model from one batch to another",
    description="The report of `batch` against the report of `against` (both limited to `analysis_type` if given): "
    "each verdict share in both and its change, apps paired by number with McNemar's test of the changes, the "
    "weakness families and quality figures of both, and every app whose verdicts changed.",
    tags=["reports"],
    **requires("read", 422, 503),
)
async def models_comparison_change(
    resources: NamedDependency[Resources],
    batch: Annotated[str, QueryParameter(pattern=BATCH_ID_PATTERN, description="the newer batch")],
    against: Annotated[
        str, QueryParameter(pattern=BATCH_ID_PATTERN, description="the batch to compare with")
    ],
    analysis_type: FromQuery[AnalysisType | None] = None,
    alpha: AlphaQuery = ALPHA,
    format: FromQuery[ReportFormat] = "json",
) -> Response[ReportComparison]:
    head, base = await asyncio.gather(
        comparison_of(resources, Scope(analysis_type, batch), alpha),
        comparison_of(resources, Scope(analysis_type, against), alpha),
    )
    return answered(compare(base, head), format, {"csv": comparison_csv, "markdown": comparison_markdown})


router = Router(
    "/",
    route_handlers=[
        models_comparison,
        models_comparison_csv,
        models_comparison_markdown,
        models_comparison_change,
    ],
)
