"""The static analyzer as a real service: `python -m services.analyzers.static` spoken to over WebSocket (protocol v1).

A full run on sample app1, health, bad requests, and cancel killing the running tool's process group.
"""

from __future__ import annotations

import itertools
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from websockets.sync.client import ClientConnection, connect

from services.analyzers.static.tools.eslint import Eslint
from shared.results.findings import SEVERITIES
from shared.wire.catalog import TOOLS_BY_SERVICE
from shared.wire.protocol import (
    MAX_FRAME_BYTES,
    CancelFrame,
    ErrorFrame,
    HealthFrame,
    HealthReport,
    HeartbeatFrame,
    ProgressFrame,
    ResultFrame,
    decode_analyzer_frame,
    encode_frame,
)
from tests.support.analyzers import AUTH, analyze_frame, start_analyzer, stop
from tests.support.processes import proc_stats
from tests.support.static import copy_sample, write_many_modules

TOOLS = TOOLS_BY_SERVICE["static"]
# installed with the project (pyproject.toml), so they run wherever the tests run
PYTHON_TOOLS = ("bandit", "ruff", "pylint", "mypy", "vulture", "radon", "detect-secrets", "semgrep")
VERSION = re.compile(r"^\d+(\.\d+)+$")
SLOW_APP = ("assay-tests", 2)  # many modules: pylint needs several seconds for it


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("apps")
    copy_sample(root)
    write_many_modules(root / SLOW_APP[0] / f"app{SLOW_APP[1]}", 150)
    return root


@pytest.fixture(scope="module")
def static(apps: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, process = start_analyzer("static", tmp_path_factory.mktemp("static"), apps)
    yield url
    stop(process)


def analyze(
    request_id: str, model: str = "openai_codex-mini", app: int = 1, tools: list[str] | None = None
) -> str:
    return encode_frame(analyze_frame(request_id, model=model, app=app, tools=tools))


def receive(ws: ClientConnection, timeout_s: float = 10.0) -> msgspec.Struct:
    return decode_analyzer_frame(ws.recv(timeout=timeout_s))


TimedFrames = list[tuple[float, msgspec.Struct]]  # (time.monotonic() at arrival, frame)
FullRun = tuple[float, TimedFrames]  # (wall seconds, frames)


def frames_until_terminal(ws: ClientConnection, request_id: str, timeout_s: float) -> TimedFrames:
    """(arrival time, frame) for every frame of the run, the terminal frame last."""
    seen: TimedFrames = []
    deadline = time.monotonic() + timeout_s
    while True:
        frame = receive(ws, max(0.1, deadline - time.monotonic()))
        if getattr(frame, "id", None) != request_id:
            continue
        seen.append((time.monotonic(), frame))
        if isinstance(frame, (ResultFrame, ErrorFrame)):
            return seen


@pytest.fixture(scope="module")
def full_run(static: str) -> FullRun:
    """Every tool on sample app1: (wall seconds, timed frames)."""
    with connect(static, max_size=MAX_FRAME_BYTES, additional_headers=AUTH) as ws:
        started = time.monotonic()
        ws.send(analyze("full"))
        frames = frames_until_terminal(ws, "full", timeout_s=180)
    return frames[-1][0] - started, frames


def eslint_installed() -> bool:
    return Eslint().locate() is not None


def test_full_run_records_every_tool_with_version_and_command(full_run: FullRun) -> None:
    _wall, frames = full_run
    last = frames[-1][1]
    assert isinstance(last, ResultFrame), f"run ended with {last}"
    result = last.result
    assert result.service == "static" and result.status == "success", result.error
    runs = {run.tool: run for run in result.tools}
    assert list(runs) == list(TOOLS)
    expected_to_run = PYTHON_TOOLS + (("eslint",) if eslint_installed() else ())
    for name in expected_to_run:
        run = runs[name]
        assert run.status == "success", (name, run.reason)
        assert VERSION.match(run.version or ""), (name, run.version)
        assert run.command and Path(run.command[0]).is_file(), (name, run.command)
        assert run.files_analyzed > 0 and run.duration_s > 0
    for run in runs.values():
        assert run.findings_count == sum(1 for finding in result.findings if finding.tool == run.tool)
        if run.status == "skipped":
            assert run.reason, run.tool
    # sample app1 ships no lockfile: npm-audit says so instead of pretending the dependencies are clean
    assert runs["npm-audit"].status == "skipped" and runs["npm-audit"].reason == "no package-lock.json"
    assert result.sarif["version"] == "2.1.0" and result.sarif["runs"]


def test_full_run_finds_the_sample_flaws_with_at_least_eight_tools(full_run: FullRun) -> None:
    last = full_run[1][-1][1]
    assert isinstance(last, ResultFrame), f"run ended with {last}"
    result = last.result
    tools_with_findings = {finding.tool for finding in result.findings}
    assert len(tools_with_findings) >= 8, sorted(tools_with_findings)
    rules = {(finding.tool, finding.rule_id) for finding in result.findings}
    # the flaws app1 was written with: SQL built from input, shell=True, debug=True, a committed key, eval()
    assert ("semgrep", "python-sql-string-formatting") in rules
    assert ("bandit", "B602") in rules and ("bandit", "B201") in rules
    assert ("detect-secrets", "Stripe Access Key") in rules
    assert ("mypy", "return-value") in rules
    if eslint_installed():
        assert ("eslint", "no-eval") in rules
    for finding in result.findings:
        assert finding.severity in SEVERITIES
        assert re.fullmatch(r"[0-9a-f]{32}", finding.fingerprint)
        assert finding.path and not finding.path.startswith(("/", "./", "..")), finding
        assert "sk_live_c7dd508c917cc1cda25c1699" not in finding.message  # secrets are never echoed
    assert len({finding.fingerprint for finding in result.findings}) > 0.9 * len(result.findings)


def test_full_run_beats_and_reports_progress_per_tool(full_run: FullRun) -> None:
    wall, frames = full_run
    beats = [at for at, frame in frames if isinstance(frame, HeartbeatFrame)]
    assert len(beats) >= 2
    marks = [frames[0][0], *beats, frames[-1][0]]
    assert max(later - earlier for earlier, later in itertools.pairwise(marks)) <= 5.0
    finished = {
        frame.tool for _, frame in frames if isinstance(frame, ProgressFrame) and frame.stage != "started"
    }
    assert finished == set(TOOLS)
    print(f"\nfull static run on openai_codex-mini/app1: {wall:.1f} s wall")


def test_health_lists_every_tool_with_availability_and_version(static: str) -> None:
    with connect(static, additional_headers=AUTH) as ws:
        ws.send(encode_frame(HealthFrame(id="h1")))
        report = receive(ws, 60)
        started = time.monotonic()
        ws.send(encode_frame(HealthFrame(id="h2")))
        again = receive(ws, 10)
        repeat_s = time.monotonic() - started
    assert isinstance(report, HealthReport) and report.id == "h1" and report.service == "static"
    health = {tool.name: tool for tool in report.tools}
    assert list(health) == list(TOOLS)
    for name in PYTHON_TOOLS + ("pip-audit",):
        assert health[name].available and VERSION.match(health[name].version or ""), health[name]
    assert health["eslint"].available == eslint_installed()
    if not eslint_installed():
        assert health["eslint"].reason == "eslint not installed (needs Node.js; run make install)"
    assert health["npm-audit"].available == (shutil.which("npm") is not None)
    assert isinstance(again, HealthReport) and again.tools == report.tools
    assert repeat_s < 1.0, f"a second health probe took {repeat_s:.2f} s: versions must be cached"


@pytest.mark.parametrize(
    ("frame", "code", "echoed"),
    [
        (analyze("bad-tool", tools=["bandit", "sonarqube"]), "bad_request", "bad-tool"),
        (analyze("no-app", model="nobody", app=42), "unknown_app", "no-app"),
        ('{"type": "analyze", "id": "partial"}', "bad_request", "partial"),  # JSON, but no task/app
    ],
)
def test_bad_requests_get_an_error_frame(static: str, frame: str, code: str, echoed: str) -> None:
    with connect(static, additional_headers=AUTH) as ws:
        ws.send(frame)
        answer = receive(ws)
        while isinstance(answer, HeartbeatFrame | ProgressFrame):
            answer = receive(ws)
    assert isinstance(answer, ErrorFrame) and answer.code == code and answer.id == echoed, answer
    if echoed == "bad-tool":
        assert "sonarqube" in answer.message


def processes_in(folder: Path) -> dict[int, tuple[int, str]]:
    """pid → (process group, state) of every live process whose working directory is `folder` (via /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(entry / "cwd").resolve() != folder:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[2]), fields[0])
    return found


def group_alive(pgid: int) -> bool:
    """Any process of the group that is not a zombie (a zombie has exited; only its parent has not reaped it)."""
    return any(int(fields[2]) == pgid and fields[0] != "Z" for _pid, fields in proc_stats())


def test_cancel_kills_the_running_tool_group_and_answers_cancelled(static: str, apps: Path) -> None:
    slow_app = (apps / SLOW_APP[0] / f"app{SLOW_APP[1]}").resolve()
    with connect(static, additional_headers=AUTH) as ws:
        ws.send(analyze("slow", model=SLOW_APP[0], app=SLOW_APP[1], tools=["pylint"]))
        deadline = time.monotonic() + 20
        while not (running := processes_in(slow_app)):
            assert time.monotonic() < deadline, "pylint never started"
            time.sleep(0.05)
        pgid = next(iter(running.values()))[0]
        time.sleep(0.3)
        assert group_alive(pgid)
        cancelled_at = time.monotonic()
        ws.send(encode_frame(CancelFrame(id="slow")))
        terminal = frames_until_terminal(ws, "slow", timeout_s=5)[-1][1]
        while group_alive(pgid) and time.monotonic() - cancelled_at < 2.0:
            time.sleep(0.05)
        gone_after = time.monotonic() - cancelled_at
    # A cancelled run answers with what it kept: here nothing finished, so pylint's record says cancelled.
    assert isinstance(terminal, ResultFrame) and terminal.result.status == "cancelled", terminal
    assert [(run.tool, run.status) for run in terminal.result.tools] == [("pylint", "cancelled")]
    assert not group_alive(pgid), "pylint's process group outlived the cancel by 2 s"
    assert gone_after < 2.0
