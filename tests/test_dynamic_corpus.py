"""Every active check against the flaw corpus (tests/corpus/apps), each app started for real: the check reports
its flaw on the vulnerable app with a proof, placed on the handler's lines where the static tools see the flaw,
and reports nothing on the fixed twin. Every app, Flask, FastAPI or Express, runs through the app runner, in its
sandbox."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.analyzers.dynamic.scanner import wapiti_path
from services.analyzers.dynamic.timing import DELAY_S, LATE_SHARE
from services.analyzers.running_app.surface.discover import source_endpoints
from shared.operations.config import Settings
from shared.results.findings import SEVERITIES
from shared.wire.protocol import ServiceResult
from tests.support.analyzers import result_async
from tests.support.apps import needs_bwrap
from tests.support.corpus import (
    CORPUS,
    analyze,
    describe,
    flaw,
    frame,
    node_app,
    pairs,
    prepare_node_modules,
)

pytestmark = needs_bwrap
PORT = re.compile(r"127\.0\.0\.1:\d+")


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    return prepare_node_modules(tmp_path_factory.mktemp("node"))


def flaw_findings(result: ServiceResult, tool: str) -> list:  # type: ignore[type-arg]
    return [f for f in result.findings if f.tool == tool]


@pytest.mark.parametrize("pair", pairs("dynamic"))
async def test_check_finds_the_flaw_with_proof_and_stays_silent_on_the_fix(
    pair: str, corpus_analyzer: str, corpus_settings: Settings
) -> None:
    spec = flaw(pair)
    assert spec.dynamic is not None
    tool = spec.dynamic.tool
    vulnerable = await analyze(corpus_analyzer, corpus_settings, pair, 1, [tool])
    fixed = await analyze(corpus_analyzer, corpus_settings, pair, 2, [tool])

    found = flaw_findings(vulnerable, tool)
    assert found, f"{tool} missed the flaw of {pair}/app1: {describe(vulnerable)}"
    for finding in found:
        assert finding.proof is not None and finding.proof.exchanges and finding.proof.why
        assert SEVERITIES.index(finding.severity) <= SEVERITIES.index("medium")
        assert all(exchange.path.startswith("/") for exchange in finding.proof.exchanges)
        assert not PORT.search(finding.path or ""), finding.path  # never the sandbox's host and port
        assert "replay" in finding.extra
    # On the handler's lines, where the static tools report a flaw inside a handler (issue groups join them there);
    # a sink elsewhere (a helper, a template, the app's configuration) has no route of its own.
    handlers = [e.handler for e in source_endpoints(CORPUS / pair / "app1") if e.handler is not None]
    for sink in spec.static:
        if not any(h.path == sink.path and h.line <= sink.line <= h.end_line for h in handlers):
            continue
        assert any(
            f.path == sink.path and f.line is not None and f.line <= sink.line <= (f.end_line or f.line)
            for f in found
        ), f"no {tool} finding on {sink.path}:{sink.line}: {describe(vulnerable)}"
    assert {run.tool: run.status for run in fixed.tools} == {tool: "success"}
    assert flaw_findings(fixed, tool) == [], f"{tool} reported the fixed twin {pair}/app2: {describe(fixed)}"


async def test_path_traversal_proves_a_file_read_on_a_system_without_etc_passwd(
    corpus_analyzer: str, node_modules: Path | None
) -> None:
    """A minimal container or sandbox may have no /etc/passwd: the check then proves the read with a file Linux
    gives every process (/proc/self/status), here with the Express app run where /etc is an empty folder."""
    if node_modules is None:
        pytest.skip("npm and node are needed for the Express pairs")
    pair = "path-traversal-express"
    hide_etc = ("bwrap", "--dev-bind", "/", "/", "--tmpfs", "/etc", "--")
    async with node_app(CORPUS / pair / "app1", node_modules, confine=hide_etc) as (urls, ports):
        result = await result_async(
            corpus_analyzer, frame("no-passwd", pair, 1, ["path-traversal"], urls, ports), timeout_s=300
        )
    (finding,) = flaw_findings(result, "path-traversal")
    assert finding.proof is not None and finding.proof.evidence.startswith("Uid:\t")
    assert "/proc/self/status" in finding.message and "/proc/self/status" in finding.proof.why
    assert "root:" not in finding.proof.exchanges[1].response_excerpt


async def test_a_blind_sql_injection_only_a_delay_reveals_is_proven_by_time_within_its_bound(
    corpus_analyzer: str, corpus_settings: Settings
) -> None:
    """sqli-time-flask swallows every error and answers alike whatever the query did: neither an error nor a
    boolean difference shows the injection, SQLite has no sleep, and the work the check asks for instead is scaled
    to about DELAY_S seconds, bounded, and proven by heavy requests alternating with requests asking for none."""
    result = await analyze(corpus_analyzer, corpus_settings, "sqli-time-flask", 1, ["sqli"])
    (finding,) = flaw_findings(result, "sqli")
    assert finding.rule_id == "sqli-time" and finding.extra["dbms"] == "SQLite"
    assert finding.proof is not None
    quick, slow = finding.proof.exchanges
    assert quick.status == slow.status == 202 and quick.response_excerpt == slow.response_excerpt
    assert DELAY_S * LATE_SHARE <= (slow.elapsed_s or 0) - (quick.elapsed_s or 0) < DELAY_S * 3 + 5
    replay = {"kind": "delayed", "exchange": 1, "control": 0, "at_least_s": DELAY_S * LATE_SHARE}
    assert finding.extra["replay"] == replay


def test_every_active_check_has_a_pair_in_each_way_the_corpus_is_built() -> None:
    checks = {"sqli", "ssti", "xss-reflected", "xss-stored", "path-traversal", "command-injection", "code-injection",
              "open-redirect", "ssrf", "deserialization", "error-disclosure", "brute-force", "csrf", "idor"}  # fmt: skip
    covered = {flaw(pair).dynamic.tool for pair in pairs() if flaw(pair).dynamic is not None}  # type: ignore[union-attr]
    assert checks <= covered, checks - covered
    assert {flaw(pair).framework for pair in pairs()} >= {"flask", "fastapi", "express"}
    for pair in pairs():
        assert (CORPUS / pair / "app1" / "backend").is_dir() and (CORPUS / pair / "app2" / "backend").is_dir()


@pytest.mark.skipif(
    wapiti_path() is None, reason="wapiti is not installed (make install puts it in .venv/scanner)"
)
async def test_wapiti_runs_beside_the_checks_fed_the_surface_and_its_report_becomes_findings(
    corpus_analyzer: str, corpus_settings: Settings
) -> None:
    result = await analyze(corpus_analyzer, corpus_settings, "sqli-flask", 1, ["wapiti"])
    (run,) = result.tools
    assert run.status == "success", run.reason
    assert run.version == "wapiti 3.2.3" and run.command[0] == wapiti_path()
    assert run.command[run.command.index("--swagger") + 1] == "surface-openapi.json"
    assert "/api/books/search" in result.metrics["wapiti"]["openapi"]["paths"]
    found = [f for f in result.findings if f.tool == "wapiti"]
    assert found, describe(result)  # its SQL module's payload gets an HTTP 500 (an anomaly) from the search
    search = next(f for f in found if "/api/books/search" in f.message)
    assert (search.path, search.severity, search.proof) == ("backend/app.py", "low", None)
