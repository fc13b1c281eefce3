"""The dynamic analyzer: its checks, in the order the catalog names them.

The passive checks look at what the app answers to plain requests; the active checks (one weakness class each)
attack every insertion point of the app's surface and report a flaw only with its proof (any finding without
one is at most `low`: unproven.py); wapiti, the established
scanner, runs beside them on the same surface. The active checks and wapiti share one reconnaissance per run
(`ReconCache`: targets, surface, users).
"""

from __future__ import annotations

from services.analyzers.base.analyzer import Analyzer
from services.analyzers.base.tool import Tool
from services.analyzers.dynamic.checks.brute_force import BruteForce
from services.analyzers.dynamic.checks.code_injection import CodeInjection
from services.analyzers.dynamic.checks.command_injection import CommandInjection
from services.analyzers.dynamic.checks.csrf import Csrf
from services.analyzers.dynamic.checks.deserialization import Deserialization
from services.analyzers.dynamic.checks.error_disclosure import ErrorDisclosure
from services.analyzers.dynamic.checks.idor import Idor
from services.analyzers.dynamic.checks.open_redirect import OpenRedirect
from services.analyzers.dynamic.checks.path_traversal import PathTraversal
from services.analyzers.dynamic.checks.sqli import SqlInjection
from services.analyzers.dynamic.checks.ssrf import Ssrf
from services.analyzers.dynamic.checks.ssti import TemplateInjection
from services.analyzers.dynamic.checks.xss_reflected import ReflectedXss
from services.analyzers.dynamic.checks.xss_stored import StoredXss
from services.analyzers.dynamic.cookies import Cookies
from services.analyzers.dynamic.cors import Cors
from services.analyzers.dynamic.endpoints import Endpoints
from services.analyzers.dynamic.reachability import Reachability
from services.analyzers.dynamic.recon import ReconCache
from services.analyzers.dynamic.scanner import Wapiti
from services.analyzers.dynamic.security_headers import SecurityHeaders
from services.analyzers.dynamic.sensitive_paths import SensitivePaths
from services.analyzers.dynamic.surface_tool import SurfaceTool
from services.analyzers.dynamic.unproven import ProofRule


def build_analyzer() -> Analyzer:
    """The dynamic analyzer. It needs no source to run (the app's .env, requirements.json and backend source, when
    present, widen what it knows of the app)."""
    recons = ReconCache()
    active: list[Tool] = [
        SqlInjection(recons),
        TemplateInjection(recons),
        ReflectedXss(recons),
        StoredXss(recons),
        PathTraversal(recons),
        CommandInjection(recons),
        CodeInjection(recons),
        OpenRedirect(recons),
        Ssrf(recons),
        Deserialization(recons),
        ErrorDisclosure(recons),
        BruteForce(recons),
        Csrf(recons),
        Idor(recons),
    ]
    return Analyzer(
        service="dynamic",
        # A finding without proof is at most `low`, whichever tool reports it (unproven.py).
        tools=[
            ProofRule(tool)
            for tool in (
                Reachability(),
                SecurityHeaders(),
                Cookies(),
                Cors(),
                SensitivePaths(),
                Endpoints(recons),
                SurfaceTool(recons),
                *active,
                Wapiti(recons),
            )
        ],
        needs_source=False,
    )
