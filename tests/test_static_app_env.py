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
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from services.analyzers.base.reuse import ReuseStore
from services.analyzers.base.runner import run_tools
from services.analyzers.static.tools.app_env import MAX_MODULE_BYTES, resolve
from services.analyzers.static.tools.bandit import Bandit
from services.analyzers.static.tools.mypy import Mypy, write_answer
from services.analyzers.static.tools.pylint import Pylint
from services.analyzers.static.tools.run_inputs import code_files
from services.orchestrator.apps.prepare import _cached
from services.orchestrator.apps.runner import AppRunner
from shared.jetstream.natsd import EmbeddedNats
from shared.operations.config import load_settings
from shared.operations.process import run_process
from shared.store.paths import prepared_cache
from shared.wire.messages import TaskCompleted
from shared.wire.protocol import PythonEnvironment, ServiceResult
from tests.support.analyzers import analyze_frame, findings_by_rule, result_of, start_analyzer, stop
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


def job_env(work: Path, tmp_path: Path, warm: bool = True, memory_mb: int | None = None) -> dict[str, str]:
    env = {
        "ASSAY_APP_WORK_DIR": str(work),
        "ASSAY_TOOL_CACHE_DIR": str(tmp_path / "tool-cache"),
        "ASSAY_WARM_TOOLS": "on" if warm else "off",
    }
    return env if memory_mb is None else {**env, "ASSAY_TOOL_MEMORY_MB": str(memory_mb)}


async def run_env_tools(
    app: Path,
    work: Path,
    tmp_path: Path,
    sent: PythonEnvironment | None,
    reuse: ReuseStore | None = None,
    *,
    warm: bool = True,
    memory_mb: int | None = None,
) -> ServiceResult:
    job = make_job(app, env=job_env(work, tmp_path, warm, memory_mb), reuse=reuse)
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
    assert not {"no-member", "unexpected-keyword-arg"} & set(findings_by_rule(before, "pylint"))
    assert not {"attr-defined", "call-arg"} & set(findings_by_rule(before, "mypy"))

    assert notes(after) == {}, notes(
        after
    )  # flask_cors too, though the warm server's warm-up could not find it
    pylint, mypy = findings_by_rule(after, "pylint"), findings_by_rule(after, "mypy")
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
    assert "no-member" in findings_by_rule(cold, "pylint") and notes(cold) == {}


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
    assert findings_by_rule(result, "pylint")  # the app's own findings are all there


@needs_bwrap
async def test_a_preparation_past_its_wait_leaves_the_task_without_it_and_still_reaches_the_cache(
    tmp_path: Path,
) -> None:
    apps = tmp_path / "apps"
    make_app(apps, MODEL, 1, {"backend/app.py": APP, "backend/requirements.txt": "humanize==4.16.0\n"})
    work = Path(tempfile.mkdtemp(prefix="assay-apps-"))  # the sandbox user must reach it: not under tmp_path
    try:
        runner = AppRunner(
            runner_settings(tmp_path, apps, work)
        )  # ASSAY_STATIC_ENV_WAIT_S: its default, 600 s
        # half the task's time left (what the orchestrator passes) is shorter than the build
        env = await runner.python_environment(app_request("task_00000000e004", MODEL, 1), within_s=1.0)
        assert env is not None and env.venv is None and env.reason is not None
        assert "did not end within 1 s" in env.reason and "half the task's time left" in env.reason

        # the build goes on, unwaited, and reaches the cache
        cache = prepared_cache(work)
        for _ in range(600):
            ready = [entry for entry in cache.iterdir() if entry.name.startswith("venv-")]
            if ready and (ready[0] / ".assay-ready").is_file():
                break
            await asyncio.sleep(0.5)
        assert len(ready) == 1, list(cache.iterdir())
        mark = (ready[0] / ".assay-ready").stat().st_ino

        # the next task finds it there
        again = await runner.python_environment(app_request("task_00000000e006", MODEL, 1), within_s=60.0)
        assert again == PythonEnvironment(venv=ready[0].name)
        assert (ready[0] / ".assay-ready").stat().st_ino == mark  # the same build, not a new one
        assert not any(entry.name.startswith(".venv-") for entry in cache.iterdir())
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
        (FAKE_VENV, "lib link", "lib is not a folder (a link or another kind of file)"),
        (FAKE_VENV, "site-packages link", "site-packages is not a folder (a link or another kind of file)"),
        (FAKE_VENV, "oversize module", "site-packages/huge.py is a module larger than 4194304 bytes"),
        (FAKE_VENV, "foreign owner", "site-packages/typedpkg/__init__.py is owned by uid 65534"),
        (FAKE_VENV, "group-writable", "site-packages/typedpkg is writable by its group or by others"),
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
    elif plant == "lib link":
        lib = site.parents[1]
        lib.rename(lib.with_name("elsewhere"))
        lib.symlink_to(lib.with_name("elsewhere"))
    elif plant == "site-packages link":
        site.rename(site.with_name("elsewhere"))
        site.symlink_to(site.with_name("elsewhere"))
    elif plant == "oversize module":
        with (site / "huge.py").open("wb") as huge:  # sparse: only its size is ever looked at
            huge.truncate(MAX_MODULE_BYTES + 1)
    elif plant == "foreign owner":
        if os.geteuid() != 0:
            pytest.skip("only root can give a file to another user")
        os.chown(site / "typedpkg" / "__init__.py", 65534, 65534)
    elif plant == "group-writable":
        (site / "typedpkg").chmod(0o775)
    app = make_app(tmp_path / "apps", MODEL, 1, {"backend/app.py": TYPED_APP})

    result = await run_env_tools(app, work, tmp_path, PythonEnvironment(venv=name))
    assert {run.tool: run.status for run in result.tools} == {"pylint": "success", "mypy": "success"}
    assert why in notes(result)["pylint"] and "refused" in notes(result)["pylint"]
    assert why in result.metrics["mypy"]["environment"]
    assert "call-arg" not in findings_by_rule(result, "mypy")  # typedpkg was not read
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
    mypy = findings_by_rule(result, "mypy")
    assert [(f.path, f.line) for f in mypy["call-arg"]] == [("backend/app.py", 4)]
    assert [f.line for f in mypy["arg-type"]] == [4]
    assert {f.path for f in result.findings if f.path} == {"backend/app.py"}
    assert "typedpkg" not in json.dumps([f.message for f in result.findings if f.rule_id == "assignment"])


async def test_a_changed_virtualenv_runs_pylint_and_mypy_again_an_unchanged_one_reuses_them(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    fake_venv(work, files={"typedpkg/__init__.py": TYPED_PACKAGE, "typedpkg/py.typed": ""})
    app = make_app(tmp_path / "apps", MODEL, 1, {"backend/app.py": TYPED_APP})
    store = ReuseStore(tmp_path / "reuse", 10**8)

    first = await run_env_tools(app, work, tmp_path, PythonEnvironment(venv=FAKE_VENV), store)
    again = await run_env_tools(app, work, tmp_path, PythonEnvironment(venv=FAKE_VENV), store)
    # the same name built again (a rebuilt cache entry, renamed into place), with another package in it
    shutil.rmtree(prepared_cache(work) / FAKE_VENV)
    fake_venv(
        work,
        files={
            "typedpkg/__init__.py": TYPED_PACKAGE.replace("value: int", "value: str, times: int"),
            "typedpkg/py.typed": "",
        },
    )
    changed = await run_env_tools(app, work, tmp_path, PythonEnvironment(venv=FAKE_VENV), store)
    assert {run.status for run in first.tools} == {"success"}
    assert {run.status for run in again.tools} == {"reused"}
    assert {run.status for run in changed.tools} == {"success"}
    assert "call-arg" in findings_by_rule(first, "mypy") and "call-arg" not in findings_by_rule(
        changed, "mypy"
    )


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
    # a regular package of the environment by the name of a namespace package the analyzer imports itself
    (site / "opentelemetry").mkdir()
    (site / "opentelemetry" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
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
import opentelemetry.trace
print("own opentelemetry:", not any(place.startswith({str(site)!r}) for place in opentelemetry.__path__))
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
        "own opentelemetry: True",
    ]
    assert not marker.exists()


# A module under MAX_MODULE_BYTES (some 1.7 MB) that astroid and mypy need several hundred MB to build, past
# SMALL_LIMIT_MB in both, while a small module's run stays under it in both (checked when the two were made smaller
# than 200_000 lines and 450 MB, which cost a fifth more CPU for the same proof).
BIG_MODULE = "".join(f"a{number} = 1\n" for number in range(150_000))
BIG_APP = '''"""Reads a large module of its environment."""
from bigmod import *
import bigmod

print(bigmod.a1, a2)
'''
SMALL_LIMIT_MB = 400  # what the analyzer's own start-up fits in, the large module's build does not


@pytest.mark.parametrize("warm", [True, False], ids=["warm server", "command line"])
async def test_a_module_past_the_memory_limit_stops_that_run_with_the_reason_and_the_analyzer_goes_on(
    tmp_path: Path, warm: bool
) -> None:
    work = tmp_path / "work"
    fake_venv(work, files={"bigmod/__init__.py": BIG_MODULE, "bigmod/py.typed": ""})
    app = make_app(tmp_path / "apps", MODEL, 1, {"backend/app.py": BIG_APP})
    assert len(BIG_MODULE) < MAX_MODULE_BYTES  # the environment itself passes its check

    limited = await run_env_tools(
        app, work, tmp_path, PythonEnvironment(venv=FAKE_VENV), warm=warm, memory_mb=SMALL_LIMIT_MB
    )
    runs = {run.tool: run for run in limited.tools}
    for tool in ("pylint", "mypy"):
        assert runs[tool].status == "failed", runs[tool]
        assert f"stopped at its memory limit of {SMALL_LIMIT_MB} MB (ASSAY_TOOL_MEMORY_MB)" in (
            runs[tool].reason or ""
        )
    assert not limited.findings  # nothing of a run cut short is reported

    # the same analyzer process, with its default limit: the same app and environment are analyzed in full
    full = await run_env_tools(app, work, tmp_path, PythonEnvironment(venv=FAKE_VENV), warm=warm)
    assert {run.tool: run.status for run in full.tools} == {"pylint": "success", "mypy": "success"}


async def test_a_syntax_error_inside_an_installed_package_leaves_mypy_checking_the_app_without_it(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    fake_venv(
        work,
        files={
            "typedpkg/__init__.py": "def f(:\n",
            "typedpkg/py.typed": "",
        },
    )
    app = make_app(
        tmp_path / "apps",
        MODEL,
        1,
        {"backend/app.py": 'import typedpkg\n\ncount: int = "three"\nprint(typedpkg, count)\n'},
    )
    result = await run_env_tools(app, work, tmp_path, PythonEnvironment(venv=FAKE_VENV))
    mypy = findings_by_rule(result, "mypy")
    assert {run.tool: run.status for run in result.tools}["mypy"] == "success"
    assert [(f.path, f.line) for f in mypy["assignment"]] == [("backend/app.py", 3)]  # the app's own finding
    assert "syntax" not in mypy
    assert {f.path for f in result.findings if f.tool == "mypy"} == {"backend/app.py"}
    note = result.metrics["mypy"]["environment"]
    assert note.startswith(
        "without the app's dependencies: mypy stopped at errors in the environment's own files"
    )
    assert "typedpkg/__init__.py" in note
    runs = {run.tool: run for run in result.tools}
    assert all(
        "--python-executable" not in arg for arg in runs["mypy"].command
    )  # the run it reports: without


def test_concurrent_writers_of_the_search_folders_answer_never_collide(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    site.mkdir()
    errors: list[BaseException] = []

    def write(path: Path, start: threading.Barrier) -> None:
        start.wait()
        try:
            write_answer(path, site)
        except BaseException as error:  # noqa: BLE001 - counted below
            errors.append(error)

    for round_number in range(40):
        path = tmp_path / "answers" / f"venv-{round_number}"
        start = threading.Barrier(8)
        threads = [threading.Thread(target=write, args=(path, start)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert path.read_text().startswith("#!/bin/sh") and os.access(path, os.X_OK)
    assert errors == []
    assert sorted(item.name for item in (tmp_path / "answers").iterdir()) == sorted(
        f"venv-{number}" for number in range(40)
    )  # no partial file left behind


def test_a_long_unchecked_virtualenv_name_is_cut_short_in_the_note(tmp_path: Path) -> None:
    settings = load_settings({"ASSAY_APP_WORK_DIR": str(tmp_path)})
    found = resolve(settings, PythonEnvironment(venv="venv-" + "z" * 5000))
    assert found is not None and found.site_packages is None
    assert "refused" in found.note and len(found.note) < 300


def test_pylint_and_mypy_runs_depend_on_the_code_that_checks_and_guards_the_environment() -> None:
    guarded = {"app_env.py", "import_guard.py", "memory_limit.py"}
    for tool in (Pylint(), Mypy()):
        assert guarded <= {file.name for file in code_files(tool)}
    assert not guarded & {file.name for file in code_files(Bandit())}


@needs_bwrap
async def test_a_work_folder_the_sandbox_user_cannot_reach_leaves_the_static_task_without_the_environment(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("the sandbox user's reach is checked only as root")
    apps = tmp_path / "apps"
    make_app(apps, MODEL, 1, {"backend/app.py": APP, "backend/requirements.txt": REQUIREMENTS})
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    runner = AppRunner(runner_settings(tmp_path, apps, private / "work"))
    env = await runner.python_environment(app_request("task_00000000e005", MODEL, 1))
    assert env is not None and env.venv is None and env.reason is not None
    assert env.reason.startswith("its preparation failed") and "cannot reach" in env.reason


def as_sandbox_user() -> None:
    os.setgid(65534)
    os.setuid(65534)


@needs_bwrap
def test_a_ready_virtualenv_is_root_s_and_the_sandbox_user_cannot_plant_anything_in_it(
    prepared: tuple[Path, PythonEnvironment], app_work_dir: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("the sandbox user exists apart from this one only as root")
    _apps, env = prepared
    assert env.venv is not None
    venv = prepared_cache(app_work_dir) / env.venv
    for folder, dirs, files in os.walk(venv):
        for place in (folder, *(os.path.join(folder, name) for name in dirs + files)):
            status = os.lstat(place)
            # a link's own mode is always 0777 and means nothing; what it is owned by does
            assert status.st_uid == 0 and (stat.S_ISLNK(status.st_mode) or not status.st_mode & 0o022), place
    site = next((venv / "lib").glob("python*/site-packages"))
    for target in (site, venv, site.parent):
        refused = subprocess.run(
            ["ln", "-s", "/etc", str(target / "evil")],
            capture_output=True,
            text=True,
            preexec_fn=as_sandbox_user,
        )
        assert refused.returncode != 0 and "Permission denied" in refused.stderr
        assert not os.path.lexists(target / "evil")


@needs_bwrap
async def test_a_static_preparation_waits_for_the_app_runners_budget_within_its_wait(tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    make_app(apps, MODEL, 1, {"backend/app.py": APP, "backend/requirements.txt": "humanize==4.16.0\n"})
    work = Path(tempfile.mkdtemp(prefix="assay-apps-"))  # the sandbox user must reach it: not under tmp_path
    try:
        runner = AppRunner(runner_settings(tmp_path, apps, work, ASSAY_APP_CONCURRENCY="1"))
        async with runner.budget:  # an app run holds the only place
            env = await runner.python_environment(app_request("task_00000000e007", MODEL, 1), within_s=1.0)
            assert env is not None and env.venv is None and env.reason is not None
            assert "did not end within 1 s" in env.reason
            await asyncio.sleep(1.0)
            cache = prepared_cache(work)
            assert not cache.exists() or list(cache.iterdir()) == []  # nothing was built beside the run
        await asyncio.sleep(1.0)  # and the preparation that never had a place is dropped, not started later
        assert not cache.exists() or list(cache.iterdir()) == []
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def test_a_ready_entry_made_before_entries_were_taken_back_is_taken_back_on_its_next_use(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a file to another user")
    cache = prepared_cache(tmp_path / "work")
    site = fake_venv(tmp_path / "work", files={"typedpkg/__init__.py": TYPED_PACKAGE})
    venv = site.parents[2]
    (venv / ".assay-ready").touch()
    (site / "typedpkg").chmod(0o777)
    for folder, dirs, files in os.walk(venv):
        for place in (folder, *(os.path.join(folder, name) for name in dirs + files)):
            os.chown(place, 65534, 65534)

    async def build(_folder: Path) -> None:
        raise AssertionError("a ready entry is never built again")

    assert await _cached(venv.name, cache, build, []) == venv
    for folder, dirs, files in os.walk(venv):
        for place in (folder, *(os.path.join(folder, name) for name in dirs + files)):
            status = os.lstat(place)
            assert status.st_uid == 0 and not status.st_mode & 0o022, place
    settings = load_settings({"ASSAY_APP_WORK_DIR": str(tmp_path / "work")})
    found = resolve(settings, PythonEnvironment(venv=venv.name))
    assert found is not None and found.site_packages == site, found  # the analyzer takes it now
