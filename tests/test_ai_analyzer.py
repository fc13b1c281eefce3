"""The AI analyzer as a real service process, spoken to over protocol v1, reviewing copies of the sample apps
with the fake chat-completions server (real HTTP on loopback) standing in for the model provider."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from websockets.asyncio.client import connect

from shared.results.findings import Finding, fingerprint
from shared.wire.protocol import (
    ErrorFrame,
    HealthFrame,
    HealthReport,
    ResultFrame,
    ServiceResult,
    decode_analyzer_frame,
    encode_frame,
)
from tests.support.analyzers import ANALYZER_TOKEN, AUTH, analyze_frame
from tests.support.fake_llm import FAKE_MODEL, FakeLLM, Recorded
from tests.support.ports import free_port
from tests.support.processes import ServiceDidNotStart, stop, wait_for_port

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "generated" / "apps" / "openai_codex-mini" / "app1"
MODEL_SLUG = "openai_codex-mini"
CONFIGURED_MODEL = "test/configured-model"
MISSING_ENDPOINT = "/api/reports/weekly"  # added to the copy's requirements.json; no route serves it
SECRET = "do-not-send-this-secret"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def start_analyzer(root: Path, apps: Path, **ai_env: str) -> tuple[str, subprocess.Popen[bytes]]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ASSAY_", "OTEL_", "OPENROUTER"))
    }
    env |= {
        "ASSAY_APPS_DIR": str(apps),
        "ASSAY_VAR_DIR": str(root / "var"),
        "ASSAY_TRACE_DIR": str(root / "traces"),
        "ASSAY_AI_MODEL": CONFIGURED_MODEL,
        "ASSAY_ANALYZER_TOKEN": ANALYZER_TOKEN,
        **ai_env,
    }
    log = (root / "analyzer.log").open("ab")
    for _ in range(3):  # another worker may take the chosen port before the analyzer binds it: choose again
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "services.analyzers.ai", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_port(port, process, root / "analyzer.log", timeout_s=20)
        except ServiceDidNotStart:
            stop(process)
            continue
        return f"ws://127.0.0.1:{port}", process
    raise RuntimeError(f"the analyzer did not start on three free ports: {root / 'analyzer.log'}")


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """app1: the notes sample plus an endpoint nobody implemented and a secret in .env.
    app3: the same without requirements.json."""
    root = tmp_path_factory.mktemp("apps")
    app1 = root / MODEL_SLUG / "app1"
    shutil.copytree(SAMPLE, app1)
    spec = json.loads((app1 / "requirements.json").read_text())
    spec["endpoints"].append({"method": "GET", "path": MISSING_ENDPOINT, "expected_status": 200})
    (app1 / "requirements.json").write_text(json.dumps(spec, indent=2))
    with (app1 / ".env").open("a") as env_file:
        env_file.write(f"\nSECRET_TOKEN={SECRET}\n")
    app3 = root / MODEL_SLUG / "app3"
    shutil.copytree(SAMPLE, app3)
    (app3 / "requirements.json").unlink()
    return root


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    server = FakeLLM()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, apps: Path, fake: FakeLLM
) -> Iterator[tuple[str, Path]]:
    """The analyzer with a key, pointed at the fake; yields its URL and its span folder."""
    root = tmp_path_factory.mktemp("ai")
    url, process = start_analyzer(root, apps, ASSAY_AI_BASE_URL=fake.url, ASSAY_AI_API_KEY=fake.key)
    yield url, root / "traces"
    stop(process)


async def analyze(
    url: str,
    request_id: str,
    app: int = 1,
    tools: list[str] | None = None,
    options: dict[str, Any] | None = None,
    traceparent: str | None = None,
) -> ServiceResult:
    frame = analyze_frame(
        request_id,
        task_id=f"task_{request_id:0>12}",
        model=MODEL_SLUG,
        app=app,
        tools=tools,
        options=options,
        deadline_s=30,
        traceparent=traceparent,
    )
    async with connect(url, max_size=None, additional_headers=AUTH) as websocket:
        await websocket.send(encode_frame(frame))
        async for message in websocket:
            answer = decode_analyzer_frame(message)
            if isinstance(answer, ErrorFrame):
                pytest.fail(f"error frame: {answer.code}: {answer.message}")
            if isinstance(answer, ResultFrame) and answer.id == request_id:
                return answer.result
    pytest.fail("the connection closed without a result")


async def analyze_capturing(
    fake: FakeLLM, url: str, request_id: str, tools: list[str] | None = None, traceparent: str | None = None
) -> tuple[ServiceResult, list[Recorded]]:
    before = len(fake.requests)
    result = await analyze(url, request_id, tools=tools, traceparent=traceparent)
    return result, fake.requests[before:]


def by_tool(result: ServiceResult, tool: str) -> tuple[dict[str, Any], list[Finding]]:
    run = next(run for run in result.tools if run.tool == tool)
    return msgspec.to_builtins(run), [finding for finding in result.findings if finding.tool == tool]


def read_spans(folder: Path) -> list[dict[str, Any]]:
    """The spans in a span folder; a line still being written is skipped."""
    spans = []
    for path in folder.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                spans.append(json.loads(line))
            except ValueError:
                continue
    return spans


def lines_with(path: Path, needle: str) -> list[int]:
    return [number for number, line in enumerate(path.read_text().splitlines(), 1) if needle in line]


@pytest.fixture(scope="module")
def happy(service: tuple[str, Path], fake: FakeLLM) -> tuple[ServiceResult, list[Recorded]]:
    """One full run of both tools, shared by the tests that read it; the model's requests it caused."""
    return asyncio.run(analyze_capturing(fake, service[0], "a1b2c3d4e5f6", traceparent=TRACEPARENT))


async def test_both_reviews_succeed_with_the_servers_model_and_an_honest_command(
    happy: tuple[ServiceResult, list[Recorded]], fake: FakeLLM
) -> None:
    result, _ = happy
    assert result.status == "success" and result.error is None
    for tool in ("requirements-review", "code-quality-review"):
        run, findings = by_tool(result, tool)
        assert run["status"] == "success" and run["version"] == FAKE_MODEL
        assert run["command"] == [
            "POST",
            f"{fake.url}/chat/completions",
            f"model={CONFIGURED_MODEL}",
            "temperature=0",
            "response_format=json_object",
        ]
        assert run["findings_count"] == len(findings) and run["files_analyzed"] >= 4
        raw = json.loads(result.raw_outputs[tool])
        assert (
            raw["request"]["body"]["model"] == CONFIGURED_MODEL and fake.key not in result.raw_outputs[tool]
        )
        assert result.metrics[tool]["attempts"] == 1


async def test_quality_findings_point_at_the_real_lines_with_stable_fingerprints(
    happy: tuple[ServiceResult, list[Recorded]], apps: Path
) -> None:
    result, _ = happy
    app = apps / MODEL_SLUG / "app1"
    _, findings = by_tool(result, "code-quality-review")
    located = {(finding.path, finding.line): finding for finding in findings}
    expected = [
        ("frontend/app.js", n, "code-injection", "high") for n in lines_with(app / "frontend/app.js", "eval(")
    ]
    expected += [
        ("backend/app.py", n, "sql-injection", "critical")
        for n in lines_with(app / "backend/app.py", 'execute(f"')
    ]
    expected += [
        ("backend/app.py", n, "shell-injection", "medium")
        for n in lines_with(app / "backend/app.py", "shell=True")
    ]
    assert expected and len(findings) == len(expected)
    for path, line, rule, severity in expected:
        finding = located[(path, line)]
        assert (finding.rule_id, finding.severity, finding.category) == (rule, severity, "security")
        source_line = (app / path).read_text().splitlines()[line - 1]
        assert finding.fingerprint == fingerprint("code-quality-review", rule, path, source_line)
    unknown = [finding for finding in findings if finding.rule_id == "shell-injection"]
    assert all(finding.extra["reported_severity"] == "urgent" for finding in unknown)
    sarif = next(
        run for run in result.sarif["runs"] if run["tool"]["driver"]["name"] == "code-quality-review"
    )
    assert sarif["tool"]["driver"]["version"] == FAKE_MODEL and len(sarif["results"]) == len(findings)


async def test_the_unimplemented_endpoint_is_the_one_requirement_not_met(
    happy: tuple[ServiceResult, list[Recorded]], apps: Path
) -> None:
    result, _ = happy
    spec = apps / MODEL_SLUG / "app1" / "requirements.json"
    _, findings = by_tool(result, "requirements-review")
    assert len(findings) == 1
    (finding,) = findings
    assert (finding.rule_id, finding.severity, finding.category) == (
        "requirement-not-met",
        "medium",
        "requirements",
    )
    assert MISSING_ENDPOINT in finding.message and finding.path == "requirements.json"
    assert finding.line == lines_with(spec, MISSING_ENDPOINT)[0]
    text = f"Endpoint GET {MISSING_ENDPOINT} answers 200"
    assert finding.fingerprint == fingerprint(
        "requirements-review", "requirement-not-met", "requirements.json", text
    )
    metrics = result.metrics["requirements-review"]
    declared = json.loads(spec.read_text())
    total = len(declared["functional_requirements"]) + len(declared["endpoints"])
    assert (metrics["met"], metrics["total"], metrics["unmet"]) == (total - 1, total, [text])


async def test_the_model_saw_the_bearer_key_the_requirements_and_the_source_but_no_secret(
    happy: tuple[ServiceResult, list[Recorded]], fake: FakeLLM, apps: Path
) -> None:
    _, requests = happy
    assert sorted(request.kind for request in requests) == ["quality", "requirements"]
    app = apps / MODEL_SLUG / "app1"
    spec = json.loads((app / "requirements.json").read_text())
    source_line = next(
        line for line in (app / "backend/app.py").read_text().splitlines() if 'execute(f"' in line
    )
    for request in requests:
        assert request.headers["authorization"] == f"Bearer {fake.key}"
        assert request.body["model"] == CONFIGURED_MODEL
        assert "===== FILE backend/app.py =====" in request.prompt and source_line.strip() in request.prompt
        assert "===== FILE frontend/app.js =====" in request.prompt
        assert SECRET not in request.prompt
    asked = next(request for request in requests if request.kind == "requirements").prompt
    for number, text in enumerate(spec["functional_requirements"], 1):
        assert f"R{number}. {text}" in asked
    assert f"Endpoint GET {MISSING_ENDPOINT} answers 200" in asked


async def test_the_model_call_is_a_client_span_in_the_callers_trace(
    happy: tuple[ServiceResult, list[Recorded]], service: tuple[str, Path]
) -> None:
    deadline = time.monotonic() + 5
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(spans) < 2:  # spans are exported in batches every 0.5 s
        await asyncio.sleep(0.1)
        spans = [
            span
            for span in read_spans(service[1])
            if span["name"] == f"chat {CONFIGURED_MODEL}"
            and span["attributes"]["assay.task_id"] == "task_a1b2c3d4e5f6"
        ]
    assert len(spans) == 2
    for span in spans:
        assert span["kind"] == "CLIENT" and span["trace_id"] == TRACEPARENT.split("-")[1]
        assert span["attributes"]["gen_ai.response.model"] == FAKE_MODEL


async def test_an_answer_that_is_not_json_fails_that_tool_only(
    service: tuple[str, Path], fake: FakeLLM
) -> None:
    fake.script("quality", "invalid-json")
    result, _ = await analyze_capturing(fake, service[0], "000000000002")
    quality, findings = by_tool(result, "code-quality-review")
    assert quality["status"] == "failed" and findings == []
    assert "not valid JSON" in str(quality["reason"]) and "Sure! Here is my review" in str(quality["reason"])
    assert "unquoted" in json.loads(result.raw_outputs["code-quality-review"])["response"]["content"]
    requirements, unmet = by_tool(result, "requirements-review")
    assert requirements["status"] == "success" and len(unmet) == 1
    assert result.status == "partial" and "code-quality-review" in str(result.error)


async def test_an_answer_of_the_wrong_shape_fails_with_the_validation_error(
    service: tuple[str, Path], fake: FakeLLM
) -> None:
    fake.script("requirements", "wrong-shape")
    result = await analyze(service[0], "000000000003", tools=["requirements-review"])
    run, _ = by_tool(result, "requirements-review")
    assert run["status"] == "failed" and "does not match the review schema" in str(run["reason"])
    assert result.status == "failed"


async def test_a_rate_limit_is_retried_and_the_review_succeeds(
    service: tuple[str, Path], fake: FakeLLM
) -> None:
    fake.script("requirements", "429")
    result, requests = await analyze_capturing(
        fake, service[0], "000000000004", tools=["requirements-review"]
    )
    run, findings = by_tool(result, "requirements-review")
    assert run["status"] == "success" and len(findings) == 1
    assert [request.status for request in requests] == [429, 200]
    assert result.metrics["requirements-review"]["attempts"] == 2


async def test_no_answer_within_the_tools_timeout_is_a_timeout(
    service: tuple[str, Path], fake: FakeLLM
) -> None:
    fake.script("quality", "slow")
    started = time.monotonic()
    result = await analyze(
        service[0],
        "000000000005",
        tools=["code-quality-review"],
        options={"timeouts": {"code-quality-review": 0.5}},
    )
    run, _ = by_tool(result, "code-quality-review")
    assert run["status"] == "timeout" and "within 0.5 s" in str(run["reason"])
    assert time.monotonic() - started < 2.5


async def test_without_requirements_json_the_requirements_review_is_skipped(
    service: tuple[str, Path], fake: FakeLLM
) -> None:
    result = await analyze(service[0], "000000000006", app=3)
    requirements, _ = by_tool(result, "requirements-review")
    quality, _ = by_tool(result, "code-quality-review")
    assert requirements["status"] == "skipped" and "no requirements.json" in str(requirements["reason"])
    assert quality["status"] == "success"


async def test_invalid_options_fail_the_tool_with_the_reason(service: tuple[str, Path]) -> None:
    result = await analyze(
        service[0],
        "000000000007",
        tools=["code-quality-review"],
        options={"code-quality-review": {"max_prompt_chars": 5}},
    )
    run, _ = by_tool(result, "code-quality-review")
    assert run["status"] == "failed" and "max_prompt_chars" in str(run["reason"])


async def test_without_a_key_both_tools_are_skipped_with_the_reason(
    tmp_path: Path, apps: Path, fake_llm: FakeLLM
) -> None:
    # a fake of its own: the module's may still hear another test's analyzer retry
    url, process = start_analyzer(tmp_path, apps, ASSAY_AI_BASE_URL=fake_llm.url)
    try:
        async with connect(url, additional_headers=AUTH) as websocket:
            await websocket.send(encode_frame(HealthFrame(id="h1")))
            health = decode_analyzer_frame(await websocket.recv())
        assert isinstance(health, HealthReport)
        assert [(tool.name, tool.available, tool.reason) for tool in health.tools] == [
            ("requirements-review", False, "no API key: set ASSAY_AI_API_KEY"),
            ("code-quality-review", False, "no API key: set ASSAY_AI_API_KEY"),
        ]
        result = await analyze(url, "000000000008")
    finally:
        stop(process)
    assert [(run.tool, run.status, run.reason) for run in result.tools] == [
        ("requirements-review", "skipped", "no API key: set ASSAY_AI_API_KEY"),
        ("code-quality-review", "skipped", "no API key: set ASSAY_AI_API_KEY"),
    ]
    assert result.findings == [] and fake_llm.requests == []
