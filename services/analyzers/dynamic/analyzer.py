"""The dynamic analyzer: its checks, in the order the catalog names them."""

from __future__ import annotations

from services.analyzers.base.analyzer import Analyzer
from services.analyzers.dynamic.cookies import Cookies
from services.analyzers.dynamic.cors import Cors
from services.analyzers.dynamic.endpoints import Endpoints
from services.analyzers.dynamic.reachability import Reachability
from services.analyzers.dynamic.security_headers import SecurityHeaders
from services.analyzers.dynamic.sensitive_paths import SensitivePaths


def build_analyzer() -> Analyzer:
    """The dynamic analyzer. It needs no source: only the app's .env (ports) and requirements.json, when present."""
    return Analyzer(
        service="dynamic",
        tools=[Reachability(), SecurityHeaders(), Cookies(), Cors(), SensitivePaths(), Endpoints()],
        needs_source=False,
    )
