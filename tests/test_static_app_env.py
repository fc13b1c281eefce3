"""pylint and mypy read the app's prepared virtualenv: prepared by the app runner (real bwrap, real pip from the
machine's index), named in the analyze frame, checked by the static analyzer before any tool reads it, never run.

Without it an import of the app's dependencies is one `unresolved-imports` note; with it the tools resolve them and
report what needs their code (pylint `no-member`, mypy `call-arg`). A virtualenv holding a symbolic link is refused
with the reason, errors inside an installed package are never reported, a failed preparation leaves the findings
and says why in the note, and a changed virtualenv runs the tools again instead of reusing their stored runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from services.analyzers.base.reuse import ReuseStore
from services.analyzers.base.runner import run_tools
from services.analyzers.static.tools.mypy import Mypy
from services.analyzers.static.tools.pylint import Pylint
from services.orchestrator.apps.runner import AppRunner
from shared.jetstream.natsd import EmbeddedNats
from shared.operations.process import run_process
from shared.results.findings import Finding
from shared.store.paths import prepared_cache
from shared.wire.messages import TaskCompleted
from shared.wire.protocol import PythonEnvironment, ServiceResult
from tests.support.analyzers import analyze_frame, result_of, start_analyzer, stop
from tests.support.apps import app_request, make_app, needs_bwrap, runner_settings
from tests.support.orchestrator import APP as ORCHESTRATED_APP
from tests.support.orchestrator import ScriptedAnalyzer, orchestrated, terminal_of
from tests.support.static import make_job

MODEL = "openai_codex-mini"
REQUIREMENTS = "flask==3.1.3\nflask-cors==6.0.0\nhumanize==4.16.0\n"
# flask-cors and humanize are not installed where the analyzer runs (the tests' flask is, so is the image's not)
APP = '''"""Sizes of uploads."""
import humanize
from flask import Flask
from flask_cors import CORS

app = Flask(__name__)
CORS(app)


@app.route("/size/<int:count>")
def size(count: int) -> str:
    """The size, said twice."""
    return humanize.natural_size(count) + humanize.naturalsize(count, bogus=True)
'''
MISUSE_LINE = 13
FAKE_VENV = "venv-" + "a" * 24 + "-" + "b" * 8
# A typed package with type errors of its own, and a function the app calls wrongly.
TYPED_PACKAGE = '''"""A typed package whose own code is wrong."""


def scale(value: int) -> int:
    """Twice the value."""
    broken: int = "not a number"
    return value * 2 + broken
'''
TYPED_APP = '''"""Uses the typed package."""
import typedpkg

print(typedpkg.scale("three", 4))
'''


def by_rule(result: ServiceResult, tool: str) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {}
    for finding in result.findings:
        if finding.tool == tool:
            found.setdefault(finding.rule_id, []).append(finding)
    return found


def notes(result: ServiceResult) -> dict[str, str]:
    return {f.tool: f.message for f in result.findings if f.rule_id == "unresolved-imports"}


def fake_venv(work: Path, name: str = FAKE_VENV, files: dict[str, str] | None = None) -> Path:
    """A virtualenv folder as the cache holds one, built by the test: `files` under its site-packages."""
    site = prepared_cache(work) / name / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    for relative, text in (files or {}).items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(text)
    return site


def job_env(work: Path, tmp_path: Path, warm: bool = True) -> dict[str, str]:
    return {
        "ASSAY_APP_WORK_DIR": str(work),
        "ASSAY_TOOL_CACHE_DIR": str(tmp_path / "tool-cache"),
        "ASSAY_WARM_TOOLS": "on" if warm else "off",
    }


async def run_env_tools(
    app: Path,
    work: Path,
    tmp_path: Path,
    sent: PythonEnvironment | None,
    reuse: ReuseStore | None = None,
    *,
    warm: bool = True,
) -> ServiceResult:
    job = make_job(app, env=job_env(work, tmp_path, warm), reuse=reuse)
    return await run_tools("static", [Pylint(), Mypy()], msgspec.structs.replace(job, python_env=sent))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, app_work_dir: Path) -> tuple[Path, PythonEnvironment]:
    """The app's folder and its virtualenv, prepared by the app runner as a static task's is."""
    if shutil.which("bwrap") is None:
        pytest.skip(
            "bubblewrap (bwrap) is not installed: `apt-get install bubblewrap` (Makefile: make sandbox)"
        )
    tmp = tmp_path_factory.mktemp("env")
    apps = tmp / "apps"
    make_app(apps, MODEL, 1, {"backend/app.py": APP, "backend/requirements.txt": REQUIREMENTS})
    runner = AppRunner(runner_settings(tmp, apps, app_work_dir))
    env = asyncio.run(runner.python_environment(app_request("task_00000000e001", MODEL, 1)))
    assert env is not None and env.venv is not None, env
    return apps, env


@pytest.fixture(scope="module")
def analyzer(
    prepared: tuple[Path, PythonEnvironment], app_work_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("static")
    extra = {"ASSAY_APP_WORK_DIR": str(app_work_dir), "ASSAY_TOOL_CACHE_DIR": str(folder / "tool-cache")}
    url, process = start_analyzer("static", folder, prepared[0], extra)
    yield url
    stop(process)


@needs_bwrap
def test_with_the_prepared_virtualenv_the_apps_imports_resolve_and_what_needs_them_is_found(
    prepared: tuple[Path, PythonEnvironment], analyzer: str
) -> None:
    _apps, env = prepared
    assert env.venv is not None
    before = result_of(analyzer, analyze_frame("before", tools=["pylint", "mypy"]), timeout_s=180)
    with_env = msgspec.structs.replace(analyze_frame("with", tools=["pylint", "mypy"]), python_env=env)
    after = result_of(analyzer, with_env, timeout_s=180)

    assert "humanize" in notes(before)["pylint"] and "flask_cors" in notes(before)["pylint"]
    assert "dependencies" not in notes(before)["pylint"] and "environment" not in before.metrics.get(
        "mypy", {}
    )
    assert not {"no-member", "unexpected-keyword-arg"} & set(by_rule(before, "pylint"))
    assert not {"attr-defined", "call-arg"} & set(by_rule(before, "mypy"))

    assert notes(after) == {}, notes(
        after
    )  # flask_cors too, though the warm server's warm-up could not find it
    pylint, mypy = by_rule(after, "pylint"), by_rule(after, "mypy")
    assert [(f.path, f.line) for f in pylint["no-member"]] == [("backend/app.py", MISUSE_LINE)]
    assert "natural_size" in pylint["no-member"][0].message
    assert [f.line for f in pylint["unexpected-keyword-arg"]] == [MISUSE_LINE]
    assert [(f.path, f.line) for f in mypy["attr-defined"]] == [("backend/app.py", MISUSE_LINE)]
    assert [f.line for f in mypy["call-arg"]] == [MISUSE_LINE] and "bogus" in mypy["call-arg"][0].message
    runs = {run.tool: run for run in after.tools}
    assert runs["pylint"].status == runs["mypy"].status == "success"
    assert any(arg.startswith("--init-hook=") and env.venv in arg for arg in runs["pylint"].command)
    assert any(arg.startswith("--python-executable=") for arg in runs["mypy"].command)
    assert all(env.venv in after.metrics[tool]["environment"] for tool in ("pylint", "mypy"))


@needs_bwrap
async def test_pylint_on_its_command_line_reads_the_environment_as_its_warm_server_does(
    prepared: tuple[Path, PythonEnvironment], app_work_dir: Path, tmp_path: Path
) -> None:
    apps, env = prepared
    app = apps / MODEL / "app1"
    warm = await run_env_tools(app, app_work_dir, tmp_path, env, warm=True)
    cold = await run_env_tools(app, app_work_dir, tmp_path, env, warm=False)
    assert "cpu_s" in warm.metrics["pylint"] and "cpu_s" not in cold.metrics["pylint"]  # each ran as it says
    assert [run.command for run in warm.tools] == [run.command for run in cold.tools]
    assert sorted(f.fingerprint for f in warm.findings) == sorted(f.fingerprint for f in cold.findings)
    assert "no-member" in by_rule(cold, "pylint") and notes(cold) == {}


@needs_bwrap
async def test_the_orchestrator_names_the_prepared_virtualenv_in_the_static_frame_only_when_pylint_or_mypy_run(
    nats_server: EmbeddedNats, tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    app = make_app(
        apps, MODEL, ORCHESTRATED_APP, {"backend/app.py": APP, "backend/requirements.txt": REQUIREMENTS}
    )
    peer = ScriptedAnalyzer("static", ["result"])
    env = {"ASSAY_APPS_DIR": str(apps), "ASSAY_APP_WORK_DIR": str(app_work_dir)}
    async with orchestrated(nats_server.url, tmp_path, [peer], **env) as bench:
        endings = []
        for analysis_type in ("static", "security"):
            request = await bench.request(analysis_type)
            endings.append(terminal_of(await bench.events.terminal(request.task.id, timeout_s=300)))
        (app / "backend" / "requirements.txt").write_text("assay-no-such-package-anywhere==1.0\n")
        request = await bench.request("static")
        endings.append(terminal_of(await bench.events.terminal(request.task.id, timeout_s=300)))
    assert all(isinstance(ending, TaskCompleted) and ending.status == "completed" for ending in endings), (
        endings
    )
    static, security, failed = peer.analyzed
    assert static.python_env is not None and static.python_env.venv is not None
    assert (prepared_cache(app_work_dir) / static.python_env.venv / "lib").is_dir()
    assert security.python_env is None  # no pylint, no mypy: nothing prepared
    assert failed.python_env is not None and failed.python_env.venv is None
    assert failed.python_env.reason is not None and "preparation failed" in failed.python_env.reason


@needs_bwrap
async def test_a_failed_preparation_leaves_the_findings_and_the_note_says_why(
    tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    app = make_app(
        apps,
        MODEL,
        2,
        {"backend/app.py": APP, "backend/requirements.txt": "assay-no-such-package-anywhere==1.0\n"},
    )
    runner = AppRunner(runner_settings(tmp_path, apps, app_work_dir))
    env = await runner.python_environment(app_request("task_00000000e002", MODEL, 2))
    assert env is not None and env.venv is None and env.reason is not None
    assert env.reason.startswith("its preparation failed") and "assay-no-such-package-anywhere" in env.reason

    result = await run_env_tools(app, app_work_dir, tmp_path, env)
    assert {run.tool: run.status for run in result.tools} == {"pylint": "success", "mypy": "success"}
    assert "its preparation failed" in notes(result)["pylint"] and "humanize" in notes(result)["pylint"]
    assert by_rule(result, "pylint")  # the app's own findings are all there


@needs_bwrap
async def test_a_preparation_past_its_wait_is_stopped_and_the_reason_says_so(tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    make_app(apps, MODEL, 1, {"backend/app.py": APP, "backend/requirements.txt": "humanize==4.16.0\n"})
    work = Path(tempfile.mkdtemp(prefix="assay-apps-"))  # the sandbox user must reach it: not under tmp_path
    try:
        runner = AppRunner(runner_settings(tmp_path, apps, work, ASSAY_STATIC_ENV_WAIT_S="0.5"))
        env = await runner.python_environment(app_request("task_00000000e004", MODEL, 1))
        assert env is not None and env.venv is None and env.reason is not None
        assert "did not end within 0.5 s" in env.reason
        assert [
            entry.name for entry in prepared_cache(work).iterdir() if entry.name.startswith("venv-")
        ] == []
        assert not any(entry.name.startswith(".venv-") for entry in prepared_cache(work).iterdir())
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def test_without_a_sandbox_or_with_no_wait_nothing_is_prepared_and_the_reason_is_given(
    tmp_path: Path,
) -> None:
    apps = tmp_path / "apps"
    make_app(apps, MODEL, 1, {"backend/app.py": APP, "backend/requirements.txt": REQUIREMENTS})
    make_app(apps, MODEL, 2, {"backend/app.py": APP})
    work = tmp_path / "work"
    off = AppRunner(runner_settings(tmp_path, apps, work, ASSAY_APP_SANDBOX="off"))
    env = await off.python_environment(app_request("task_00000000e003", MODEL, 1))
    assert env == PythonEnvironment(reason="not prepared: ASSAY_APP_SANDBOX=off (prepared only in a sandbox)")
    never = AppRunner(runner_settings(tmp_path, apps, work, ASSAY_STATIC_ENV_WAIT_S="0"))
    env = await never.python_environment(app_request("task_00000000e003", MODEL, 1))
    assert env is not None and env.reason is not None and "ASSAY_STATIC_ENV_WAIT_S" in env.reason
    assert await off.python_environment(app_request("task_00000000e003", MODEL, 2)) is None  # no requirements
    assert not prepared_cache(work).exists() or not any(prepared_cache(work).iterdir())


@pytest.mark.parametrize(
    ("name", "plant", "why"),
    [
        (FAKE_VENV, "link", "site-packages/evil is a symbolic link"),
        (FAKE_VENV, "fifo", "site-packages/pipe is a FIFO"),
        ("../../etc", None, "is not the name of a prepared virtualenv"),
        ("venv-" + "c" * 24 + "-" + "d" * 8, None, "cannot be read"),
    ],
)
async def test_a_virtualenv_that_is_not_plain_folders_and_files_is_refused_and_the_tools_still_run(
    tmp_path: Path, name: str, plant: str | None, why: str
) -> None:
    work = tmp_path / "work"
    site = fake_venv(work, files={"typedpkg/__init__.py": TYPED_PACKAGE, "typedpkg/py.typed": ""})
    if plant == "link":
        (site / "evil").symlink_to("/etc")
    elif plant == "fifo":
        os.mkfifo(site / "pipe")
    app = make_app(tmp_path / "apps", MODEL, 1, {"backend/app.py": TYPED_APP})

    result = await run_env_tools(app, work, tmp_path, PythonEnvironment(venv=name))
    assert {run.tool: run.status for run in result.tools} == {"pylint": "success", "mypy": "success"}
    assert why in notes(result)["pylint"] and "refused" in notes(result)["pylint"]
    assert why in result.metrics["mypy"]["environment"]
    assert "call-arg" not in by_rule(result, "mypy")  # typedpkg was not read
    assert all("--python-executable" not in arg for run in result.tools for arg in run.command)


async def test_errors_inside_an_installed_package_are_never_reported_only_the_apps_misuse_of_it(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    site = fake_venv(work, files={"typedpkg/__init__.py": TYPED_PACKAGE, "typedpkg/py.typed": ""})
    app = make_app(tmp_path / "apps", MODEL, 1, {"backend/app.py": TYPED_APP})
    # the package's own error is one mypy finds when it checks the package's file
    alone = await run_process(
        [sys.executable, "-m", "mypy", "--config-file=", str(site / "typedpkg" / "__init__.py")],
        timeout_s=120,
    )
    assert "Incompatible types in assignment" in alone.stdout

    result = await run_env_tools(app, work, tmp_path, PythonEnvironment(venv=FAKE_VENV))
    mypy = by_rule(result, "mypy")
    assert [(f.path, f.line) for f in mypy["call-arg"]] == [("backend/app.py", 4)]
    assert [f.line for f in mypy["arg-type"]] == [4]
    assert {f.path for f in result.findings if f.path} == {"backend/app.py"}
    assert "typedpkg" not in json.dumps([f.message for f in result.findings if f.rule_id == "assignment"])


async def test_a_changed_virtualenv_runs_pylint_and_mypy_again_an_unchanged_one_reuses_them(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    fake_venv(work, files={"typedpkg/__init__.py": TYPED_PACKAGE, "typedpkg/py.typed": ""})
    other = FAKE_VENV.replace("a", "e")
    fake_venv(
        work,
        other,
        files={
            "typedpkg/__init__.py": TYPED_PACKAGE.replace("value: int", "value: str, times: int"),
            "typedpkg/py.typed": "",
        },
    )
    app = make_app(tmp_path / "apps", MODEL, 1, {"backend/app.py": TYPED_APP})
    store = ReuseStore(tmp_path / "reuse", 10**8)

    first = await run_env_tools(app, work, tmp_path, PythonEnvironment(venv=FAKE_VENV), store)
    again = await run_env_tools(app, work, tmp_path, PythonEnvironment(venv=FAKE_VENV), store)
    changed = await run_env_tools(app, work, tmp_path, PythonEnvironment(venv=other), store)
    assert {run.status for run in first.tools} == {"success"}
    assert {run.status for run in again.tools} == {"reused"}
    assert {run.status for run in changed.tools} == {"success"}
    assert "call-arg" in by_rule(first, "mypy") and "call-arg" not in by_rule(changed, "mypy")


def test_a_module_of_the_apps_environment_is_read_by_astroid_but_never_imported(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    site.mkdir()
    marker = tmp_path / "ran"
    (site / "planted.py").write_text(f"open({str(marker)!r}, 'w').close()\nVALUE = 1\n")
    (site / "evil.pth").write_text(f"import os; open({str(marker)!r}, 'w').close()\n")
    # a namespace package the analyzer's own folders share with the environment: its own module imports, the
    # environment's does not
    trusted = tmp_path / "trusted"
    for folder, module, text in (
        (trusted, "ok", "VALUE = 2\n"),
        (site, "bad", f"open({str(marker)!r}, 'w')\n"),
    ):
        (folder / "shared_ns").mkdir(parents=True)
        (folder / "shared_ns" / f"{module}.py").write_text(text)
    probe = f"""
import sys
import astroid
from services.analyzers.static.tools.import_guard import read_only
sys.path.insert(0, {str(trusted)!r})
read_only({str(site)!r})
print(astroid.MANAGER.ast_from_module_name("planted").locals["VALUE"][0].lineno)
for name in ("planted", "shared_ns.ok", "shared_ns.bad"):
    try:
        __import__(name)
        print("imported:", name)
    except ImportError as error:
        print("refused:", error)
"""
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    assert done.stdout.splitlines() == [
        "2",
        "refused: planted is in the app's environment: read by pylint, never imported",
        "imported: shared_ns.ok",
        "refused: shared_ns.bad is in the app's environment: read by pylint, never imported",
    ]
    assert not marker.exists()
