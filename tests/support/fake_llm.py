"""A fake OpenAI-compatible chat-completions server for tests: real HTTP on loopback, deterministic answers.

It checks what a real provider checks (the bearer key, the body's shape), records every request, and answers
like a careful reviewer would, computed from the prompt it was sent:
- a prompt with a REQUIREMENTS section gets a requirements verdict: `Endpoint <METHOD> <path> …` is met
  only when a route string in the sources matches the path (`<id>` parts match one segment); other
  requirements are met;
- any other prompt gets a code review: a finding for every `eval(` (high), every `execute(f"` (given as
  "Critical", to exercise case mapping) and every `shell=True` (given as "urgent", a severity the scale
  does not know), each with the file's path and the line number shown in the prompt.
`script(kind, *steps)` makes the next requests of one kind ("requirements" or "quality") misbehave in order:
"429" (with Retry-After: 0), "500", "invalid-json", "wrong-shape", "slow" (answers after SLOW_S seconds);
"ok" answers normally.

The `fake_llm` fixture is registered in tests/conftest.py for every test.

"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

FAKE_MODEL = "fake/reviewer-1"  # what the server says it used, whatever model was asked for
FAKE_KEY = "sk-fake-test-key"
SLOW_S = 3.0

_FILE = re.compile(r"^===== FILE (\S+) =====")
_LINE = re.compile(r"^\s*(\d+)\| (.*)$")
_REQUIREMENT = re.compile(r"^(R\d+)\. (.*)$")
_ENDPOINT = re.compile(r"^Endpoint ([A-Z]+) (\S+)")
_ROUTE = re.compile(r"""["'](/[^"'\s]*)["']""")
_PATTERNS = (  # (needle, rule id as a model might spell it, severity word, category)
    ("eval(", "code-injection", "high", "security"),
    ('execute(f"', "SQL Injection", "Critical", "security"),
    ("shell=True", "shell-injection", "urgent", "security"),
)


@dataclass
class Recorded:
    """One request the fake received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    kind: str
    status: int

    @property
    def prompt(self) -> str:
        return "\n".join(message.get("content", "") for message in self.body.get("messages", []))


def parse_files(prompt: str) -> dict[str, dict[int, str]]:
    """The files in a prompt: path → {line number: text}."""
    files: dict[str, dict[int, str]] = {}
    current: dict[int, str] | None = None
    for line in prompt.splitlines():
        header = _FILE.match(line)
        if header:
            current = files.setdefault(header.group(1), {})
            continue
        numbered = _LINE.match(line)
        if numbered and current is not None:
            current[int(numbered.group(1))] = numbered.group(2)
        elif line.startswith("====="):
            current = None
    return files


def _route_matches(path: str, files: dict[str, dict[int, str]]) -> bool:
    for lines in files.values():
        for text in lines.values():
            for route in _ROUTE.findall(text):
                pattern = re.sub(r"<[^>]+>", "[^/]+", re.escape(route))
                if re.fullmatch(pattern, path):
                    return True
    return False


def requirements_answer(prompt: str) -> dict[str, Any]:
    files = parse_files(prompt)
    verdicts = []
    for line in prompt.splitlines():
        found = _REQUIREMENT.match(line)
        if not found:
            continue
        ident, text = found.groups()
        endpoint = _ENDPOINT.match(text)
        met = _route_matches(endpoint.group(2), files) if endpoint else True
        evidence = (
            "a matching route exists" if met else f"no route for {endpoint.group(2) if endpoint else text}"
        )
        verdicts.append({"id": ident, "requirement": text, "met": met, "evidence": evidence})
    unmet = sum(1 for verdict in verdicts if not verdict["met"])
    return {
        "requirements": verdicts,
        "summary": f"{len(verdicts) - unmet} of {len(verdicts)} requirements met",
    }


def quality_answer(prompt: str) -> dict[str, Any]:
    findings = []
    for path, lines in parse_files(prompt).items():
        for number, text in sorted(lines.items()):
            for needle, rule, severity, category in _PATTERNS:
                if needle in text:
                    findings.append(
                        {
                            "rule_id": rule,
                            "severity": severity,
                            "title": f"Dangerous {needle.rstrip('(')}",
                            "message": "untrusted input reaches it",
                            "path": path,
                            "line": number,
                            "category": category,
                        }
                    )
    return {"findings": findings, "summary": f"{len(findings)} problems"}


@dataclass
class FakeLLM:
    """The server; `url` is the base URL (ending in /v1), `requests` what it received, in order."""

    key: str = FAKE_KEY
    model: str = FAKE_MODEL
    requests: list[Recorded] = field(default_factory=list)
    steps: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def script(self, kind: str, *steps: str) -> None:
        with self.lock:
            self.steps.setdefault(kind, []).extend(steps)

    def of_kind(self, kind: str) -> list[Recorded]:
        with self.lock:
            return [request for request in self.requests if request.kind == kind]

    def _next_step(self, kind: str) -> str:
        with self.lock:
            queue = self.steps.get(kind) or []
            return queue.pop(0) if queue else "ok"

    def _record(self, request: Recorded) -> None:
        with self.lock:
            self.requests.append(request)

    def answer(
        self, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Status, extra headers and JSON body for one request (also records it)."""
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []) if isinstance(m, dict))
        kind = "requirements" if "\nREQUIREMENTS\n" in prompt else "quality"
        status, extra, reply = self._respond(path, headers, body, kind, prompt)
        self._record(Recorded(path=path, headers=headers, body=body, kind=kind, status=status))
        return status, extra, reply

    def _respond(
        self, path: str, headers: dict[str, str], body: dict[str, Any], kind: str, prompt: str
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if path != "/v1/chat/completions":
            return 404, {}, {"error": {"message": f"no route {path}", "code": 404}}
        if headers.get("authorization") != f"Bearer {self.key}":
            return 401, {}, {"error": {"message": "No auth credentials found", "code": 401}}
        problem = _shape_problem(body)
        if problem:
            return 400, {}, {"error": {"message": problem, "code": 400}}
        step = self._next_step(kind)
        if step == "429":
            return 429, {"Retry-After": "0"}, {"error": {"message": "Rate limit exceeded", "code": 429}}
        if step == "500":
            return 500, {}, {"error": {"message": "upstream provider error", "code": 500}}
        if step == "slow":
            time.sleep(SLOW_S)  # this handler's own thread: other requests are still served
        if step == "invalid-json":
            content = "Sure! Here is my review: {findings: [unquoted"
        elif step == "wrong-shape":
            content = json.dumps({"findings": "none found", "requirements": "all good"})
        else:
            answer = requirements_answer(prompt) if kind == "requirements" else quality_answer(prompt)
            content = json.dumps(answer)
        with self.lock:
            number = len(self.requests) + 1
        return (
            200,
            {},
            {
                "id": f"chatcmpl-fake-{number}",
                "object": "chat.completion",
                "model": self.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": len(content) // 4},
            },
        )

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, extra, reply = fake.answer(self.path, headers, raw)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), name="fake-llm", daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _shape_problem(body: dict[str, Any]) -> str | None:
    """What a real chat-completions API would reject in this body, None when it is well formed."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model is required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            return "each message needs a role of system, user or assistant"
        if not isinstance(message.get("content"), str):
            return "each message needs text content"
    if body.get("temperature") != 0:
        return "this fake expects temperature 0"
    if body.get("response_format") != {"type": "json_object"}:
        return "this fake expects response_format json_object"
    return None


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A running fake chat-completions server: `.url` (base URL), `.key`, `.requests`, `.script(kind, …)`."""
    server = FakeLLM()
    server.start()
    yield server
    server.stop()
