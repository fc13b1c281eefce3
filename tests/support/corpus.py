"""The flaw corpus (tests/corpus/apps) as the dynamic tests and the corpus benchmark run it: each pair's flaw.json,
each app started for real by the app runner, in its sandbox (an Express app's package.json dependencies prepared by
npm as the runner prepares any Node backend), and one dynamic analysis of it through the analyzer's WebSocket
protocol, as the orchestrator sends it. (No tests here.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec
import pytest

from services.orchestrator.apps.runner import AppRunner, AppSlot
from shared.operations.config import Settings
from shared.wire.messages import AnalysisRequest
from shared.wire.protocol import AnalyzeFrame, ServiceResult
from shared.wire.tasks import TaskRef
from tests.support.analyzers import result_async, start_analyzer, stop
from tests.support.apps import runner_settings
from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "corpus" / "apps"
NODE_PACKAGES = ("express@4", "sql.js@1")


class StaticSink(msgspec.Struct, frozen=True):
    path: str
    line: int
    cwe: str
    # `<tool>:<rule id>` that must be among the findings on the line, when one must be
    rule: str | None = None


class DynamicSpot(msgspec.Struct, frozen=True):
    tool: str
    method: str
    path: str


class Flaw(msgspec.Struct, frozen=True):
    """A pair's flaw.json (tests/corpus/README.md)."""

    cwe: str
    framework: str
    description: str
    dynamic: DynamicSpot | None
    static: list[StaticSink]
    class_: str = msgspec.field(name="class")


@pytest.fixture(scope="module")
def corpus_analyzer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dynamic analyzer process whose apps root is the corpus."""
    url, process = start_analyzer("dynamic", tmp_path_factory.mktemp("dynamic"), apps_dir=CORPUS)
    yield url
    stop(process)


@pytest.fixture(scope="module")
def corpus_settings(tmp_path_factory: pytest.TempPathFactory, app_work_dir: Path) -> Settings:
    """Settings of an app runner for the corpus's apps (their virtualenvs cached for the session)."""
    return runner_settings(tmp_path_factory.mktemp("corpus"), CORPUS, app_work_dir)


def pairs(kind: Literal["dynamic", "static"] | None = None) -> list[str]:
    """The corpus's pairs; with `kind`, those whose flaw that kind of analysis can see (a static-only pair has no
    `dynamic`, a pair no pattern tool can see has no `static`)."""
    names = sorted(path.name for path in CORPUS.iterdir() if (path / "flaw.json").is_file())
    if kind == "dynamic":
        return [name for name in names if flaw(name).dynamic is not None]
    if kind == "static":
        return [name for name in names if flaw(name).static]
    return names


def flaw(pair: str) -> Flaw:
    return msgspec.json.decode((CORPUS / pair / "flaw.json").read_bytes(), type=Flaw)


def prepare_node_modules(folder: Path) -> Path | None:
    """node_modules with what the corpus's Express apps require (npm, scripts off), for a test that starts one under
    a confinement of its own rather than the app runner's; None without npm."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"name": "assay-corpus-modules", "private": true}\n')
    subprocess.run(
        [npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--silent", *NODE_PACKAGES],
        cwd=folder, check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    return folder / "node_modules"


def frame(
    request_id: str, pair: str, app: int, tools: list[str], urls: list[str], ports: dict[str, int]
) -> AnalyzeFrame:
    return AnalyzeFrame(
        id=request_id,
        task=TaskRef(id="task_0000000c0a95", model_slug=pair, app_number=app, analysis_type="dynamic"),
        tools=tools,
        target_urls=urls,
        app_ports=ports,
        options={},
        deadline_s=600.0,
    )


@contextlib.asynccontextmanager
async def node_app(
    app: Path, node_modules: Path, confine: tuple[str, ...] = ()
) -> AsyncIterator[tuple[list[str], dict[str, int]]]:
    """An Express app of the corpus running on a free port (its own TMPDIR), stopped afterwards; `confine` is a
    command the app's is run under (a bwrap that hides part of the system)."""
    port = free_port()
    scratch = Path(tempfile.mkdtemp(prefix="assay-corpus-node-"))
    env = {
        "PATH": os.environ["PATH"],
        "BACKEND_PORT": str(port),
        "PORT": str(port),
        "TMPDIR": str(scratch),
        "NODE_PATH": str(node_modules),
    }
    process = await asyncio.create_subprocess_exec(
        *confine,
        "node",
        "server.js",
        cwd=app / "backend",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=1.0) as client:
            for _ in range(100):
                try:
                    await client.get(url)
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        yield [url], {"BACKEND_PORT": port}
    finally:
        process.terminate()
        await process.wait()
        shutil.rmtree(scratch, ignore_errors=True)


async def with_running(
    settings: Settings,
    pair: str,
    app: int,
    work: Callable[[list[str], dict[str, int]], Awaitable[Any]],
) -> Any:
    """`work(target URLs, app ports)` while `pair`'s app `app` runs through the app runner (its sandbox, the marker
    listener included; a Node backend's dependencies prepared by npm). The apps root is the settings' (the corpus,
    or another root of test apps)."""
    outcome: list[Any] = []

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        outcome.append(await work(list(request.target_urls), ports))

    task = TaskRef(id="task_0000000c0a95", model_slug=pair, app_number=app, analysis_type="dynamic")
    await AppRunner(settings).run(AnalysisRequest(task=task), AppSlot(), analyze)
    return outcome[0]


async def analyze(
    analyzer: str,
    settings: Settings,
    pair: str,
    app: int,
    tools: list[str],
    timeout_s: float = 300.0,
) -> ServiceResult:
    """One dynamic analysis of the running app by the analyzer at `analyzer`."""

    async def work(urls: list[str], ports: dict[str, int]) -> ServiceResult:
        return await result_async(
            analyzer, frame(f"{pair}-{app}", pair, app, tools, urls, ports), timeout_s=timeout_s
        )

    result: ServiceResult = await with_running(settings, pair, app, work)
    return result


def describe(result: ServiceResult) -> str:
    """The result's tool runs, findings and metrics (what each check tried), for an assertion's message."""
    return json.dumps(
        {
            "runs": [(r.tool, r.status, r.reason) for r in result.tools],
            "findings": [(f.tool, f.rule_id, f.path, f.line) for f in result.findings],
            "metrics": result.metrics,
        },
        default=str,
    )
