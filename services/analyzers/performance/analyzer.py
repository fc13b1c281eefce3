"""The performance analyzer: one tool, `load`."""

from __future__ import annotations

from services.analyzers.base.analyzer import Analyzer
from services.analyzers.performance.load_tool import LoadTool


def build_analyzer() -> Analyzer:
    """The performance analyzer. It needs no source: only the app's .env (ports) and requirements.json."""
    return Analyzer(service="performance", tools=[LoadTool()], needs_source=False)
