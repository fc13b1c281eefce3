"""The dynamic analyzer, run as a real service process against real sample backends over protocol v1."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from services.analyzers.base.cpu_budget import CpuBudget
from services.analyzers.base.job import Job
from services.analyzers.base.runner import run_tool
from services.analyzers.dynamic.analyzer import build_analyzer
from services.analyzers.dynamic.checks.sqli import SqlInjection
from services.analyzers.dynamic.cookies import Cookies
from services.analyzers.dynamic.cors import EVIL_ORIGIN, cors_problem
from services.analyzers.dynamic.endpoints import Endpoints
from services.analyzers.dynamic.recon import ReconCache
from services.analyzers.dynamic.security_headers import HeaderAssessment, score
from services.analyzers.dynamic.sensitive_paths import PROBES, exposed
from services.analyzers.dynamic.unproven import ProofRule
from services.analyzers.running_app.client import Fetched, fetch, http_client
from services.analyzers.running_app.targets import NO_TARGETS
from shared.operations.app_env import app_env
from shared.operations.config import load_settings
from shared.operations.target_policy import TargetPolicy
from shared.results.findings import SEVERITIES
from shared.wire.catalog import TOOLS_BY_SERVICE
from shared.wire.protocol import ServiceResult
from shared.wire.tasks import TaskRef
from tests.support.analyzers import (
    REPO,
    SAMPLE_APPS,
    analyze_frame,
    findings_by_rule,
    result_async,
    result_of,
    start_analyzer,
    start_backend,
    stop,
)
from tests.support.ports import free_port

TOOLS = list(TOOLS_BY_SERVICE["dynamic"])
# The checks that look at plain answers; the active checks have their own tests (test_dynamic_corpus.py).
PASSIVE = ["reachability", "security-headers", "cookies", "cors", "sensitive-paths", "endpoints"]


@pytest.fixture(scope="module")
def dynamic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, process = start_analyzer("dynamic", tmp_path_factory.mktemp("dynamic"))
    yield url
    stop(process)


@pytest.fixture(scope="module")
def todo_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """openai_codex-mini/app2: a SPA catch-all (200 for any path), CORS * with credentials, no /api/stats."""
    url, process = start_backend("openai_codex-mini/app2", tmp_path_factory.mktemp("todo"))
    yield url
    stop(process)


@pytest.fixture(scope="module")
def notes_result(dynamic: str, notes_app: str) -> ServiceResult:
    return result_of(dynamic, analyze_frame("notes", app=1, target_urls=[notes_app], tools=PASSIVE))


@pytest.fixture(scope="module")
def todo_result(dynamic: str, todo_app: str) -> ServiceResult:
    return result_of(dynamic, analyze_frame("todo", app=2, target_urls=[todo_app], tools=PASSIVE))


def test_every_check_runs_and_records_its_replay_command(notes_result: ServiceResult) -> None:
    runs = {run.tool: run for run in notes_result.tools}
    assert list(runs) == PASSIVE
    assert notes_result.status == "success"
    for tool, run in runs.items():
        assert run.status == "success", (tool, run.reason)
        assert run.version and run.version.startswith("assay ")
        assert run.command[:4] == ["python", "-m", "services.analyzers.dynamic.replay", tool]
        assert run.findings_count == sum(1 for f in notes_result.findings if f.tool == tool)
        assert run.files_analyzed >= 1
    assert all(f.fingerprint and f.path and f.path.startswith("backend:/") for f in notes_result.findings)
    assert notes_result.raw_outputs["security-headers"].startswith("[")


def test_missing_security_headers_are_findings_and_score_zero(
    notes_result: ServiceResult, notes_app: str
) -> None:
    found = findings_by_rule(notes_result, "security-headers")
    expected = {
        "missing-content-security-policy": "low",  # judged medium: without proof, at most low
        "missing-x-frame-options": "low",
        "missing-x-content-type-options": "low",
        "missing-referrer-policy": "low",
        "missing-permissions-policy": "low",
        "server-version-disclosure": "low",
        "strict-transport-security-needs-https": "info",
    }
    assert {rule: findings[0].severity for rule, findings in found.items()} == expected
    judged = {rule: findings[0].extra.get("severity_without_proof") for rule, findings in found.items()}
    assert {rule: severity for rule, severity in judged.items() if severity} == {
        "missing-content-security-policy": "medium",
        "missing-x-frame-options": "medium",
    }
    assert all(finding.path == "backend:/" for findings in found.values() for finding in findings)
    metrics = notes_result.metrics["security-headers"]
    assert metrics["score"] == 0
    assert metrics["targets"][notes_app]["headers"]["strict-transport-security"] == "not-applicable"


def test_the_dotenv_file_app1_serves_is_found(notes_result: ServiceResult, notes_app: str) -> None:
    found = findings_by_rule(notes_result, "sensitive-paths")
    assert [f.path for f in found["exposed-dotenv"]] == ["backend:/.env"]
    dotenv = found["exposed-dotenv"][0]
    assert (dotenv.severity, dotenv.extra["severity_without_proof"]) == ("low", "critical")  # no proof
    assert notes_result.metrics["sensitive-paths"]["targets"][notes_app]["baseline"] == "not-found"
    # Paths the app does not serve (404) are not reported.
    assert not {"exposed-git-config", "exposed-admin-page", "exposed-backup-archive"} & set(found)


def test_a_finding_without_proof_is_at_most_low_and_says_what_it_was_judged(
    notes_result: ServiceResult, todo_result: ServiceResult
) -> None:
    assert all(isinstance(tool, ProofRule) for tool in build_analyzer().tools)  # every dynamic tool
    findings = notes_result.findings + todo_result.findings
    unproven = [f for f in findings if f.cwe is not None and f.proof is None]
    assert unproven and all(SEVERITIES.index(f.severity) >= SEVERITIES.index("low") for f in unproven)
    lowered = [f for f in unproven if "severity_without_proof" in f.extra]
    assert {f.rule_id for f in lowered} >= {"exposed-dotenv", "cors-wildcard-with-credentials"}
    for finding in lowered:
        judged = finding.extra["severity_without_proof"]
        assert SEVERITIES.index(judged) < SEVERITIES.index("low")
        assert finding.message.endswith(f"[no proof: reported at low, judged {judged}]")
    # What names no weakness is a fact of the run, not a claim of a flaw: it keeps its severity.
    (mismatch,) = findings_by_rule(todo_result, "endpoints")["endpoint-mismatch"]
    assert mismatch.cwe is None and mismatch.severity == "medium"


def test_spa_catch_all_yields_no_sensitive_paths_it_does_not_really_serve(
    todo_result: ServiceResult, todo_app: str
) -> None:
    # A naive scanner would report these: the catch-all answers 200 for them.
    for path in ("/.env", "/.git/config", "/admin", "/backup.zip", "/debug"):
        assert httpx.get(todo_app + path, trust_env=False).status_code == 200
    assert todo_result.metrics["sensitive-paths"]["targets"][todo_app]["baseline"] == "catch-all"
    found = findings_by_rule(todo_result, "sensitive-paths")
    # The one path it really serves: Flask's debug mode mounts Werkzeug's interactive console, unlike the SPA page.
    assert set(found) == {"exposed-debug-console"}
    assert [f.path for f in found["exposed-debug-console"]] == ["backend:/console"]


def test_permissive_cors_is_judged_high_and_absent_where_the_app_has_none(
    todo_result: ServiceResult, notes_result: ServiceResult
) -> None:
    found = findings_by_rule(todo_result, "cors")
    assert set(found) == {"cors-wildcard-with-credentials"}
    cors = found["cors-wildcard-with-credentials"][0]
    assert (cors.severity, cors.extra["severity_without_proof"]) == ("low", "high")  # no proof: at most low
    assert found["cors-wildcard-with-credentials"][0].cwe == "CWE-942"
    assert findings_by_rule(notes_result, "cors") == {}


def test_unimplemented_requirement_is_an_endpoint_mismatch(todo_result: ServiceResult, todo_app: str) -> None:
    mismatches = findings_by_rule(todo_result, "endpoints")["endpoint-mismatch"]
    assert len(mismatches) == 1
    (mismatch,) = mismatches
    assert mismatch.path == "backend:/api/stats" and mismatch.severity == "medium"
    assert mismatch.extra["expected"] == ["200"] and mismatch.extra["actual_status"] == 404
    assert mismatch.extra["source"] == "requirements"
    assert "GET /api/stats: expected HTTP 200, got HTTP 404" in mismatch.message
    metrics = todo_result.metrics["endpoints"]
    assert (metrics["total"], metrics["passed"], metrics["failed"], metrics["unverified"]) == (6, 5, 1, 0)
    assert (metrics["source"], metrics["document"]) == ("requirements", "requirements.json")


def test_cookie_set_without_flags_gets_one_finding_per_missing_flag(notes_result: ServiceResult) -> None:
    found = findings_by_rule(notes_result, "cookies")
    assert set(found) == {
        "cookie-missing-httponly",
        "cookie-missing-samesite",
    }  # Secure only matters on https
    for findings in found.values():
        assert [f.extra["cookie"] for f in findings] == ["last_visit"]  # once, though several pages set it
        assert findings[0].extra["set_cookie"].startswith("last_visit=<redacted>")


async def test_unreachable_target_reports_targets_unreachable_quickly(dynamic: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = await result_async(dynamic, analyze_frame("dead", target_urls=[dead]), timeout_s=10)
    assert time.monotonic() - started < 5
    runs = {run.tool: run for run in result.tools}
    assert runs["reachability"].status == "success"
    assert result.metrics["reachability"]["status"] == "targets_unreachable"
    assert [(f.rule_id, f.severity, f.path) for f in result.findings] == [
        ("target-unreachable", "high", "backend:/")
    ]
    for tool in TOOLS[1:]:
        assert runs[tool].status == "skipped"
        assert (runs[tool].reason or "").startswith(f"targets_unreachable: {dead} (ConnectError")


async def test_a_dead_target_beside_a_live_one_is_reported_and_the_live_one_checked(
    dynamic: str, notes_app: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    frame = analyze_frame("mixed", target_urls=[notes_app, dead], tools=["reachability", "security-headers"])
    result = await result_async(dynamic, frame)
    assert result.metrics["reachability"]["status"] == "partially_reachable"
    assert [f.path for f in result.findings if f.rule_id == "target-unreachable"] == ["target2:/"]
    assert set(result.metrics["security-headers"]["targets"]) == {notes_app}


async def test_without_targets_every_check_is_skipped_with_the_reason(dynamic: str) -> None:
    result = await result_async(dynamic, analyze_frame("none", model="nobody-here", app=7))
    assert {run.tool: (run.status, run.reason) for run in result.tools} == {
        tool: ("skipped", NO_TARGETS) for tool in TOOLS
    }


async def test_targets_default_to_the_ports_in_the_apps_env_file(tmp_path: Path, notes_app: str) -> None:
    app = tmp_path / "apps" / "model-y" / "app4"
    app.mkdir(parents=True)
    (app / ".env").write_text(f"# ports of the running app\nBACKEND_PORT={notes_app.rsplit(':', 1)[1]}\n")
    url, process = start_analyzer("dynamic", tmp_path / "analyzer", apps_dir=tmp_path / "apps")
    try:
        result = await result_async(url, analyze_frame("env", model="model-y", app=4, tools=["reachability"]))
    finally:
        stop(process)
    [run] = result.tools
    assert run.status == "success"
    assert run.command[run.command.index("--target") + 1] == notes_app


async def test_endpoints_check_is_skipped_where_the_app_declares_no_endpoints(
    dynamic: str, notes_app: str
) -> None:
    frame = analyze_frame("noreq", model="nobody-here", app=7, target_urls=[notes_app], tools=["endpoints"])
    result = await result_async(dynamic, frame)
    assert [(run.status, run.reason) for run in result.tools] == [
        (
            "skipped",
            "no endpoints declared: no requirements.json endpoints, no OpenAPI document shipped or served",
        )
    ]


def test_recorded_command_reproduces_the_findings(notes_result: ServiceResult) -> None:
    run = next(run for run in notes_result.tools if run.tool == "sensitive-paths")
    env = {**os.environ, "ASSAY_APPS_DIR": str(SAMPLE_APPS)}
    argv = [sys.executable, *run.command[1:]]  # "python" is whichever interpreter has the project installed
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, timeout=30, check=True)
    replayed = msgspec.json.decode(done.stdout)
    original = sorted(f.fingerprint for f in notes_result.findings if f.tool == "sensitive-paths")
    assert sorted(f["fingerprint"] for f in replayed["findings"]) == original
    assert replayed["run"]["status"] == "success"


def response(url: str, method: str = "GET", status: int = 200, body: bytes = b"", **headers: str) -> Fetched:
    pairs = [(name.replace("_", "-").lower(), value) for name, value in headers.items()]
    return Fetched(method=method, url=url, status=status, headers=pairs, body=body)


@pytest.mark.parametrize(
    ("headers", "rule", "severity"),
    [
        (
            {"access_control_allow_origin": EVIL_ORIGIN, "access_control_allow_credentials": "true"},
            "cors-reflected-origin-with-credentials",
            "high",
        ),
        ({"access_control_allow_origin": EVIL_ORIGIN}, "cors-reflected-origin", "medium"),
        ({"access_control_allow_origin": "*"}, "cors-wildcard-origin", "low"),
        (
            {"access_control_allow_origin": "*", "access_control_allow_credentials": "true"},
            "cors-wildcard-with-credentials",
            "high",
        ),
        ({"access_control_allow_origin": "https://app.example"}, None, None),
        ({}, None, None),
    ],
)
def test_cors_problem(headers: dict[str, Any], rule: str | None, severity: str | None) -> None:
    found = cors_problem(response("http://127.0.0.1:1/", **headers))
    assert ((found.rule_id, found.severity) if found else None) == ((rule, severity) if rule else None)


def test_header_score_weights() -> None:
    all_ok = {
        name: HeaderAssessment("ok")
        for name in (
            "content-security-policy",
            "strict-transport-security",
            "x-content-type-options",
            "frame-protection",
            "referrer-policy",
            "permissions-policy",
        )
    }
    assert score(all_ok) == 100
    assert score({**all_ok, "content-security-policy": HeaderAssessment("weak")}) == 88  # 100 - 25/2
    # HSTS cannot apply over http: scaled to the other 80 points.
    assert (
        score(
            {
                **all_ok,
                "strict-transport-security": HeaderAssessment("not-applicable"),
                "permissions-policy": HeaderAssessment("missing"),
            }
        )
        == 88
    )  # 70 of 80


def test_baseline_keeps_catch_all_pages_out_and_real_files_in() -> None:
    spa = response(
        "http://h/assay-x", body=b"<!DOCTYPE html><html>app shell</html>" * 4, content_type="text/html"
    )
    env_probe = next(p for p in PROBES if p.path == "/.env")
    admin_probe = next(p for p in PROBES if p.path == "/admin")
    same_shell = response("http://h/admin", body=spa.body, content_type="text/html")
    assert not exposed(admin_probe, same_shell, [spa])
    assert exposed(admin_probe, same_shell, [])  # without a catch-all, a 200 admin page counts
    real_env = response("http://h/.env", body=b"SECRET_KEY=abc\nDEBUG=1\n", content_type="text/plain")
    assert exposed(env_probe, real_env, [spa])
    assert not exposed(
        env_probe, response("http://h/.env", body=b"<html>hi</html>", content_type="text/html"), []
    )


async def _no_progress(_tool: str, _stage: str, _message: str) -> None:
    return None


async def test_targets_from_dotenv_and_an_invalid_requirements_file(tmp_path: Path, notes_app: str) -> None:
    app = tmp_path / "apps" / "model-x" / "app3"
    app.mkdir(parents=True)
    (app / ".env").write_text(f"BACKEND_PORT={notes_app.rsplit(':', 1)[1]}\n")
    (app / "requirements.json").write_text(
        '{"endpoints": [{"method": "GET", "path": "no-slash", "expected_status": 200}]}'
    )
    settings = load_settings(
        {"ASSAY_APPS_DIR": str(tmp_path / "apps"), "ASSAY_VAR_DIR": str(tmp_path / "var")}
    )
    job = Job(
        request_id="direct",
        task=TaskRef(id="task_00000000beef", model_slug="model-x", app_number=3, analysis_type="dynamic"),
        app_dir=app,
        app_env=app_env(app),
        target_urls=[],
        options={},
        deadline=time.monotonic() + 30,
        settings=settings,
        cpu_budget=CpuBudget(1),
        report=_no_progress,
    )
    endpoints = await run_tool(Endpoints(ReconCache()), job)
    assert endpoints.run.status == "failed"
    reason = endpoints.run.reason or ""
    assert "requirements.json is invalid" in reason and "$.endpoints[0].path" in reason
    cookies = await run_tool(Cookies(), job)  # borrows the endpoint paths: carries on with the target root
    assert cookies.run.status == "success"
    assert cookies.run.command[cookies.run.command.index("--target") + 1] == notes_app
    assert {f.rule_id for f in cookies.findings} == {"cookie-missing-httponly", "cookie-missing-samesite"}


async def test_a_check_stopped_by_its_budget_is_partial_and_says_so(tmp_path: Path, notes_app: str) -> None:
    """What a check never tried is not a clean bill: its run is `partial`, naming the budget that stopped it."""
    app = tmp_path / "apps" / "model-x" / "app5"
    shutil.copytree(SAMPLE_APPS / "openai_codex-mini" / "app1", app)  # its routes, for the check to attack
    (app / ".env").write_text(f"BACKEND_PORT={notes_app.rsplit(':', 1)[1]}\n")
    settings = load_settings(
        {
            "ASSAY_APPS_DIR": str(tmp_path / "apps"),
            "ASSAY_VAR_DIR": str(tmp_path / "var"),
            "ASSAY_ATTACK_MAX_REQUESTS": "3",
        }
    )
    job = Job(
        request_id="direct",
        task=TaskRef(id="task_00000000bee5", model_slug="model-x", app_number=5, analysis_type="dynamic"),
        app_dir=app, app_env=app_env(app), target_urls=[notes_app], options={},
        deadline=time.monotonic() + 60, settings=settings, cpu_budget=CpuBudget(1), report=_no_progress,
    )  # fmt: skip
    sqli = await run_tool(SqlInjection(ReconCache()), job)
    assert sqli.run.status == "partial", (sqli.run, sqli.metrics)
    assert "stopped before it tried every insertion point: its 3 requests were spent" in (
        sqli.run.reason or ""
    )
    assert sqli.metrics["stopped_by"] == "its 3 requests were spent" and sqli.metrics["requests"] == 3


async def test_a_default_target_that_does_not_answer_is_a_note_but_a_named_one_a_finding(
    tmp_path: Path, notes_app: str
) -> None:
    from services.analyzers.dynamic.reachability import Reachability

    app = tmp_path / "apps" / "model-x" / "app4"
    app.mkdir(parents=True)
    frontend = free_port()  # the .env names a frontend that is not running
    (app / ".env").write_text(f"BACKEND_PORT={notes_app.rsplit(':', 1)[1]}\nFRONTEND_PORT={frontend}\n")
    settings = load_settings(
        {"ASSAY_APPS_DIR": str(tmp_path / "apps"), "ASSAY_VAR_DIR": str(tmp_path / "var")}
    )

    def job(target_urls: list[str]) -> Job:
        return Job(
            request_id="direct",
            task=TaskRef(id="task_00000000bee4", model_slug="model-x", app_number=4, analysis_type="dynamic"),
            app_dir=app, app_env=app_env(app), target_urls=target_urls, options={},
            deadline=time.monotonic() + 30, settings=settings, cpu_budget=CpuBudget(1), report=_no_progress,
        )  # fmt: skip

    dead = f"http://127.0.0.1:{frontend}"
    by_default = await run_tool(Reachability(), job([]))
    named = await run_tool(Reachability(), job([notes_app, dead]))

    assert by_default.findings == []
    assert by_default.metrics["status"] == "partially_reachable"
    [note] = by_default.metrics["notes"]
    assert note.startswith(f"{dead} did not answer") and "not named by the request" in note
    assert [(f.rule_id, f.severity, f.path) for f in named.findings] == [
        ("target-unreachable", "high", "frontend:/")
    ]
    assert "notes" not in named.metrics


async def test_a_request_on_a_connection_the_server_closed_under_it_is_sent_again_on_a_new_one() -> None:
    """A server that answers the first request of each connection and drops the next one unanswered, as a server
    may after an error answer: the client hands the pooled connection out again, and the request must not be lost
    (it would be the one proving a flaw)."""
    connections = 0

    async def one_answer_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        body = f"answer on connection {connections}".encode()
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")  # a second request on this connection: dropped unanswered
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(one_answer_per_connection, "127.0.0.1", 0)
    host = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with http_client(TargetPolicy(app_ports=frozenset(), allow=(host,))) as client:
            first = await fetch(client, "GET", f"http://{host}/")
            second = await fetch(client, "POST", f"http://{host}/", content=b"x")
    finally:
        server.close()
        await server.wait_closed()
    assert (first.status, first.body) == (200, b"answer on connection 1")
    assert (second.status, second.error, second.body) == (200, None, b"answer on connection 2")
