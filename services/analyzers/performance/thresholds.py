"""Findings for URLs whose load run crossed a threshold: too many errors (high), too slow at p99 (medium)."""

from __future__ import annotations

from services.analyzers.performance.options import Thresholds
from services.analyzers.performance.stats import UrlStats
from services.analyzers.running_app.http_tool import http_finding
from services.analyzers.running_app.targets import Sites
from shared.results.findings import Finding

TOOL = "load"


def threshold_findings(url: str, stats: UrlStats, thresholds: Thresholds, sites: Sites) -> list[Finding]:
    """`error-rate-exceeded` and/or `p99-latency-exceeded` for one URL, with the figures in the message."""
    findings = []
    if stats.error_rate > thresholds.error_rate:
        findings.append(
            http_finding(
                TOOL,
                "error-rate-exceeded",
                "high",
                f"GET {url}: {stats.errors} of {stats.completed} requests failed ({stats.error_rate:.1%}), above the "
                f"{thresholds.error_rate:.1%} threshold; statuses {stats.status_counts}, transport errors "
                f"{stats.transport_errors}",
                url,
                sites=sites,
                anchor="error-rate",
                category="performance",
                extra={
                    "error_rate": stats.error_rate,
                    "threshold": thresholds.error_rate,
                    "status_counts": stats.status_counts,
                    "transport_errors": stats.transport_errors,
                },
            )
        )
    p99 = stats.latency_ms.p99
    if p99 is not None and p99 > thresholds.p99_ms:
        findings.append(
            http_finding(
                TOOL,
                "p99-latency-exceeded",
                "medium",
                f"GET {url}: p99 latency {p99:.3f} ms is above the {thresholds.p99_ms:g} ms threshold "
                f"(p50 {stats.latency_ms.p50:.3f} ms, max {stats.latency_ms.max:.3f} ms, {stats.completed} requests)",
                url,
                sites=sites,
                anchor="p99-latency",
                category="performance",
                extra={"p99_ms": p99, "threshold_ms": thresholds.p99_ms},
            )
        )
    return findings
