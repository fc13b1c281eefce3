"""Which analyzers an analysis type runs and which tools each analyzer offers.

The gateway validates a request's `tools` against this catalog (an unknown tool is a 422), the orchestrator
uses it to split a request between analyzers, and each analyzer registers exactly these names.
"""

from __future__ import annotations

from shared.wire.tasks import AnalysisType

TOOLS_BY_SERVICE: dict[str, tuple[str, ...]] = {
    "static": (
        "bandit",
        "ruff",
        "pylint",
        "mypy",
        "vulture",
        "radon",
        "detect-secrets",
        "eslint",
        "semgrep",
        "pip-audit",
        "npm-audit",
    ),
    "dynamic": (
        "reachability",
        "security-headers",
        "cookies",
        "cors",
        "sensitive-paths",
        "endpoints",
        "surface",
        "sqli",
        "ssti",
        "xss-reflected",
        "xss-stored",
        "path-traversal",
        "command-injection",
        "code-injection",
        "open-redirect",
        "ssrf",
        "deserialization",
        "error-disclosure",
        "brute-force",
        "csrf",
        "idor",
        "wapiti",
    ),
    "performance": ("load",),
    "ai": ("requirements-review", "code-quality-review"),
}

# Dynamic tools that only look at the app (its headers, cookies, CORS answers, declared endpoints, its surface): their
# running confirms no flaw absent. Every other dynamic tool attacks (shared by the analyzer and the verdicts).
OBSERVING_TOOLS: frozenset[str] = frozenset(
    {"reachability", "security-headers", "cookies", "cors", "endpoints", "surface"}
)
# Dynamic tools that probe or attack but report without a proof Assay can replay (the sensitive paths' content check,
# the established scanner): as their findings never make an app exploitable, their silence shows no flaw absent
# either. Every other dynamic tool is an active check (`AttackTool`) whose findings carry proof.
UNPROVEN_TOOLS: frozenset[str] = frozenset({"sensitive-paths", "wapiti"})

# `security` narrows the static analyzer to its security tools; `static` runs all of them.
SECURITY_TOOLS: tuple[str, ...] = ("bandit", "semgrep", "detect-secrets", "pip-audit", "npm-audit")

SERVICES_BY_TYPE: dict[AnalysisType, tuple[str, ...]] = {
    "security": ("static",),
    "static": ("static",),
    "dynamic": ("dynamic",),
    "performance": ("performance",),
    "ai": ("ai",),
    "comprehensive": ("static", "dynamic", "performance", "ai"),
}


def unknown_tools(analysis_type: AnalysisType, tools: list[str]) -> list[str]:
    """Tools in `tools` that no service of `analysis_type` offers."""
    offered = set(offered_tools(analysis_type))
    return [tool for tool in tools if tool not in offered]


def plan(analysis_type: AnalysisType, tools: list[str]) -> dict[str, list[str]]:
    """Map each service the type runs to the tools it should run; services left with no tool are dropped."""
    chosen: dict[str, list[str]] = {}
    for service in SERVICES_BY_TYPE[analysis_type]:
        if tools:
            picked = [tool for tool in TOOLS_BY_SERVICE[service] if tool in tools]
        else:
            picked = list(SECURITY_TOOLS if analysis_type == "security" else TOOLS_BY_SERVICE[service])
        if picked:
            chosen[service] = picked
    return chosen


def offered_tools(analysis_type: AnalysisType) -> list[str]:
    """Every tool a request of `analysis_type` may name."""
    return [tool for service in SERVICES_BY_TYPE[analysis_type] for tool in TOOLS_BY_SERVICE[service]]


def planned_tools(analysis_type: AnalysisType, tools: list[str]) -> list[str]:
    """The tools `plan` runs, in one list."""
    return [tool for service_tools in plan(analysis_type, tools).values() for tool in service_tools]
