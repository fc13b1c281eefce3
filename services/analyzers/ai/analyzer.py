"""The AI analyzer: two model reviews of the app's source, in the order the catalog names them."""

from __future__ import annotations

from services.analyzers.ai.quality import CodeQualityReview
from services.analyzers.ai.requirements import RequirementsReview
from services.analyzers.base.analyzer import Analyzer
from shared.operations.config import Settings, load_settings


def build_analyzer(settings: Settings | None = None) -> Analyzer:
    """The AI analyzer. It reads the source folder; without an API key both tools report `skipped`."""
    settings = settings or load_settings()
    return Analyzer(
        service="ai",
        tools=[RequirementsReview(settings), CodeQualityReview(settings)],
        needs_source=True,
    )
