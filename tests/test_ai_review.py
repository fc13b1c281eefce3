"""The AI analyzer's parts: answer decoding and mapping, the source budget, the prompts, and the HTTP client
against the fake chat-completions server (real HTTP on loopback)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from services.analyzers.ai.client import ChatConfig, ChatError, complete
from services.analyzers.ai.prompts import Requirement, numbered, quality_messages, requirements_messages
from services.analyzers.ai.review import (
    DEFAULT_SEVERITY,
    ReviewError,
    ReviewFinding,
    decode_review,
    map_severity,
    to_finding,
)
from services.analyzers.ai.sources import SourceFile, Sources, collect_sources, share_budget
from shared.results.findings import fingerprint
from tests.support.fake_llm import FAKE_MODEL, FakeLLM
from tests.support.ports import free_port

MESSAGES = [{"role": "system", "content": "answer in JSON"}, {"role": "user", "content": "hello"}]


def sources_of(files: dict[str, str]) -> Sources:
    return Sources(
        files=[SourceFile(path=path, text=text, shown=text) for path, text in files.items()],
        omitted=[],
        budget_chars=10_000,
    )


# answers


def test_fenced_json_with_numbers_as_strings_is_accepted() -> None:
    answer = '```json\n{"findings": [{"rule_id": "x", "severity": "low", "title": "t", "line": "7"}]}\n```'
    review = decode_review(answer)
    assert review.findings[0].line == 7
    assert review.requirements == [] and review.summary == ""


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Sure! {findings: [", "not valid JSON"),
        ('{"findings": "none"}', "does not match the review schema"),
        ('{"findings": [{"severity": "high", "title": "t"}]}', "rule_id"),
        ('{"requirements": [{"requirement": "a", "met": "perhaps"}]}', "met"),
    ],
)
def test_unusable_answers_raise_review_error_with_the_reason(answer: str, expected: str) -> None:
    with pytest.raises(ReviewError, match=expected):
        decode_review(answer)


@pytest.mark.parametrize(
    ("word", "severity"),
    [
        ("Critical", "critical"),
        ("HIGH", "high"),
        ("error", "high"),
        ("warning", "medium"),
        ("minor", "low"),
        ("note", "info"),
        (" info ", "info"),
        ("urgent", DEFAULT_SEVERITY),
        ("", DEFAULT_SEVERITY),
    ],
)
def test_severity_words_map_onto_the_one_scale(word: str, severity: str) -> None:
    assert map_severity(word) == severity


def test_finding_points_at_the_sent_file_and_fingerprints_its_source_line() -> None:
    code = "import os\nx = eval(user)\n"
    shifted = "import os\n\n\nx = eval(user)\n"
    item = ReviewFinding(
        rule_id="Code Injection", severity="High", title="eval", path="./backend/app.py", line=2
    )
    finding = to_finding("code-quality-review", item, sources_of({"backend/app.py": code}))
    assert (finding.path, finding.line, finding.rule_id, finding.severity) == (
        "backend/app.py",
        2,
        "code-injection",
        "high",
    )
    assert finding.fingerprint == fingerprint(
        "code-quality-review", "code-injection", "backend/app.py", "x = eval(user)"
    )
    # The same problem four lines down keeps its identity.
    moved = to_finding(
        "code-quality-review",
        ReviewFinding(
            rule_id="code-injection", severity="high", title="other wording", path="app.py", line=4
        ),
        sources_of({"backend/app.py": shifted}),
    )
    assert moved.path == "backend/app.py" and moved.line == 4
    assert moved.fingerprint == finding.fingerprint


def test_paths_and_lines_the_model_made_up_are_not_trusted() -> None:
    sources = sources_of({"backend/app.py": "a = 1\n", "frontend/app.js": "b()\n"})
    invented = to_finding(
        "code-quality-review",
        ReviewFinding(rule_id="r", severity="bogus", title="t", path="/etc/passwd", line=1, category="odd"),
        sources,
    )
    assert invented.path is None and invented.line is None
    assert invented.extra["reported_path"] == "/etc/passwd"
    assert (invented.severity, invented.category) == (DEFAULT_SEVERITY, "quality")
    assert invented.fingerprint == fingerprint("code-quality-review", "r", None, "", "t")
    past_the_end = to_finding(
        "code-quality-review",
        ReviewFinding(rule_id="r", severity="low", title="t", path="backend/app.py", line=99),
        sources,
    )
    assert past_the_end.line is None and past_the_end.extra["reported_line"] == 99


# sources and prompts


def test_budget_shares_are_fair_and_never_exceed_the_budget() -> None:
    assert share_budget([10, 20], 100) == [10, 20]
    assert share_budget([10, 1000, 1000], 310) == [10, 150, 150]
    assert sum(share_budget([5000, 300, 7000, 1], 4000)) <= 4000
    assert share_budget([100, 100, 100], 2) == [0, 1, 1]


async def test_sources_leave_out_secrets_vendored_code_and_links(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "backend").mkdir(parents=True)
    (app / "frontend" / "node_modules" / "lib").mkdir(parents=True)
    (app / "backend" / "app.py").write_text("print('hi')\n")
    (app / "frontend" / "app.js").write_text("console.log(1)\n")
    (app / "frontend" / "node_modules" / "lib" / "index.js").write_text("vendored()\n")
    (app / ".env").write_text("SECRET=do-not-send\n")
    (app / "backend" / "server.key").write_text("PRIVATE\n")
    (app / "requirements.json").write_text("{}")
    (app / "backend" / "blob.py").write_bytes(b"\xff\xfe\x00binary")
    outside = tmp_path / "outside.py"
    outside.write_text("host_secret = 1\n")
    os.symlink(outside, app / "backend" / "linked.py")
    sources = await collect_sources(app)
    assert [source.path for source in sources.files] == ["backend/app.py", "frontend/app.js"]


async def test_files_over_the_budget_are_cut_at_a_line_end_and_declared(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "backend").mkdir(parents=True)
    (app / "backend" / "app.py").write_text("".join(f"line_{n} = {n}\n" for n in range(1, 1001)))
    (app / "backend" / "small.py").write_text("x = 1\n")
    sources = await collect_sources(app, budget_chars=1_000)
    big = sources.by_path("backend/app.py")
    assert big is not None and big.truncated and big.shown.endswith(tuple("0123456789"))
    assert len(big.shown) + len("x = 1\n") <= 1_000
    prompt = quality_messages("m/app1", sources)[1]["content"]
    shown_lines = len(big.shown.splitlines())
    assert f"===== FILE backend/app.py ===== (truncated: first {shown_lines} of 1000 lines shown)" in prompt
    assert "===== FILE backend/small.py =====\n   1| x = 1" in prompt


def test_requirements_prompt_numbers_requirements_and_lines() -> None:
    assert numbered("a\nb") == "   1| a\n   2| b"
    sources = sources_of({"backend/app.py": "@app.route('/api/health')\n"})
    requirements = [
        Requirement(id="R1", text="Users can log in"),
        Requirement(id="R2", text="Endpoint GET /x answers 200"),
    ]
    system, user = requirements_messages("m/app2", "Todo", "A todo list.", requirements, sources)
    assert system["role"] == "system" and '"met": true' in system["content"]
    assert "Title: Todo\nA todo list." in user["content"]
    assert "REQUIREMENTS\nR1. Users can log in\nR2. Endpoint GET /x answers 200" in user["content"]
    assert "   1| @app.route('/api/health')" in user["content"]


# the client, over real HTTP


def config_for(fake: FakeLLM, **overrides: object) -> ChatConfig:
    values: dict[str, object] = {
        "base_url": fake.url,
        "api_key": fake.key,
        "model": "some/model",
        "timeout_s": 10.0,
        "backoff_s": 0.05,
    }
    values.update(overrides)
    return ChatConfig(**values)  # type: ignore[arg-type]


async def test_client_sends_the_key_and_reports_the_servers_model(fake_llm: FakeLLM) -> None:
    reply = await complete(config_for(fake_llm, referer="http://127.0.0.1:8000"), MESSAGES)
    assert reply.model == FAKE_MODEL and reply.attempts == 1 and reply.response_id == "chatcmpl-fake-1"
    seen = fake_llm.requests[0]
    assert seen.headers["authorization"] == f"Bearer {fake_llm.key}"
    assert seen.headers["x-title"] == "Assay" and seen.headers["http-referer"] == "http://127.0.0.1:8000"
    assert seen.body["model"] == "some/model" and seen.body["temperature"] == 0
    assert seen.body["response_format"] == {"type": "json_object"}


async def test_client_retries_a_rate_limit_then_succeeds(fake_llm: FakeLLM) -> None:
    fake_llm.script("quality", "429", "500")
    reply = await complete(config_for(fake_llm), MESSAGES)
    assert reply.attempts == 3
    assert [request.status for request in fake_llm.requests] == [429, 500, 200]


async def test_client_gives_up_after_bounded_attempts(fake_llm: FakeLLM) -> None:
    fake_llm.script("quality", "500", "500", "500", "500")
    started = time.monotonic()
    with pytest.raises(ChatError, match=r"HTTP 500 .*upstream provider error.*gave up after 3 attempts"):
        await complete(config_for(fake_llm), MESSAGES)
    assert len(fake_llm.requests) == 3
    assert time.monotonic() - started >= 0.05 + 0.1  # it backed off, doubling


async def test_client_fails_at_once_on_a_wrong_key_with_a_hint(fake_llm: FakeLLM) -> None:
    with pytest.raises(ChatError, match=r"HTTP 401 .*check ASSAY_AI_API_KEY.*No auth credentials found"):
        await complete(config_for(fake_llm, api_key="wrong"), MESSAGES)
    assert len(fake_llm.requests) == 1


async def test_client_names_a_wrong_base_url(fake_llm: FakeLLM) -> None:
    with pytest.raises(ChatError, match=r"HTTP 404 .*check ASSAY_AI_BASE_URL and ASSAY_AI_MODEL"):
        await complete(config_for(fake_llm, base_url=fake_llm.url + "/nope"), MESSAGES)


async def test_client_reports_an_unreachable_server() -> None:
    config = ChatConfig(
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        api_key="k",
        model="m",
        timeout_s=2,
        max_attempts=2,
        backoff_s=0.01,
    )
    with pytest.raises(ChatError, match=r"cannot reach .*gave up after 2 attempts"):
        await complete(config, MESSAGES)
