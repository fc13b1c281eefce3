"""The static tools run in-process with a real Job on real app folders: skips with reasons, timeouts, exclusions,
stable fingerprints, offline advisory databases."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from services.analyzers.base.runner import run_tool
from services.analyzers.static.analyzer import build_analyzer
from services.analyzers.static.tools import pip_audit
from services.analyzers.static.tools.bandit import Bandit
from services.analyzers.static.tools.eslint import Eslint
from services.analyzers.static.tools.network import remembered_unreachable, unreachable
from services.analyzers.static.tools.npm_audit import NpmAudit
from services.analyzers.static.tools.pip_audit import PipAudit
from services.analyzers.static.tools.pylint import Pylint
from services.analyzers.static.tools.ruff import Ruff
from services.analyzers.static.tools.semgrep import Semgrep
from services.analyzers.static.tools.source import app_files, source_files
from shared.wire.protocol import ServiceResult
from tests.support.ports import free_port
from tests.support.static import copy_sample, make_job, run_in_process


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return copy_sample(tmp_path / "apps")


async def test_a_tool_that_is_not_installed_is_skipped_and_the_run_still_succeeds(
    app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bandit, eslint, ruff = Bandit(), Eslint(), Ruff()
    monkeypatch.setattr(bandit, "program", "bandit-not-installed-here")
    monkeypatch.setattr(eslint, "program", str(app / "no-node-modules" / ".bin" / "eslint"))
    result = await run_in_process([bandit, eslint, ruff], app)
    runs = {run.tool: run for run in result.tools}
    assert (
        runs["bandit"].status == "skipped"
        and runs["bandit"].reason == "bandit-not-installed-here not installed"
    )
    assert runs["eslint"].status == "skipped"
    assert runs["eslint"].reason == "eslint not installed (needs Node.js; run make install)"
    assert runs["ruff"].status == "success" and runs["ruff"].findings_count > 0
    assert result.status == "success"
    assert {finding.tool for finding in result.findings} == {"ruff"}


async def test_without_node_on_path_eslint_and_npm_audit_are_skipped(
    app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed here at all")
    kept = [folder for folder in os.environ["PATH"].split(os.pathsep) if not (Path(folder) / "node").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(kept))
    result = await run_in_process([Eslint(), NpmAudit()], app)
    runs = {run.tool: run for run in result.tools}
    assert runs["eslint"].status == "skipped" and "needs Node.js" in (runs["eslint"].reason or "")
    assert (
        runs["npm-audit"].status == "skipped"
        and runs["npm-audit"].reason == "npm not installed (needs Node.js)"
    )
    assert result.status == "success"


async def test_tools_with_nothing_to_analyze_say_so(tmp_path: Path) -> None:
    frontend_only = tmp_path / "frontend-only"
    (frontend_only / "web").mkdir(parents=True)
    (frontend_only / "web" / "main.js").write_text("var unused = 1;\n")
    (frontend_only / "web" / "package.json").write_text('{"name": "web", "version": "1.0.0"}\n')
    result = await run_in_process(build_analyzer().tools, frontend_only)
    runs = {run.tool: run for run in result.tools}
    for name in ("bandit", "ruff", "pylint", "mypy", "vulture", "radon"):
        assert (runs[name].status, runs[name].reason) == ("skipped", "no Python files"), name
    assert (runs["pip-audit"].status, runs["pip-audit"].reason) == ("skipped", "no requirements.txt")
    assert (runs["npm-audit"].status, runs["npm-audit"].reason) == ("skipped", "no package-lock.json")
    assert runs["semgrep"].status == "success" and runs["semgrep"].files_analyzed == 1
    assert runs["detect-secrets"].status == "success" and runs["detect-secrets"].files_analyzed == 2
    if Eslint().locate():
        assert runs["eslint"].status == "success"
        assert [(f.rule_id, f.path, f.line) for f in result.findings if f.tool == "eslint"] == [
            ("no-unused-vars", "web/main.js", 1)
        ]
    empty = await run_in_process([NpmAudit()], tmp_path / "frontend-only" / "web" / "missing")
    assert empty.tools[0].status == "skipped"  # not even a folder: nothing to audit, nothing crashes


async def test_a_tool_past_its_timeout_is_killed_and_recorded_as_timeout(app: Path) -> None:
    job = make_job(app, options={"timeouts": {"pylint": 0.02}})
    output = await run_tool(Pylint(), job)
    assert output.run.status == "timeout"
    assert output.run.exit_code is None and output.run.command[1:2] == ["--rcfile=/dev/null"]
    assert "killed" in (output.run.reason or "") and output.run.duration_s < 3


def test_dependencies_caches_and_bundles_are_not_the_apps_source(tmp_path: Path) -> None:
    for path in (
        "backend/app.py",
        "backend/__pycache__/app.cpython-311.py",
        ".venv/lib/site.py",
        "venv/x.py",
        "frontend/app.js",
        "frontend/node_modules/lib/index.js",
        "frontend/vendor/jquery.min.js",
        "build/out.js",
        ".env",
        "frontend/util.mjs",
    ):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x = 1\n")
    assert source_files(tmp_path, ("Python",)) == ["backend/app.py"]
    assert source_files(tmp_path, ("JavaScript",)) == ["frontend/app.js", "frontend/util.mjs"]
    assert app_files(tmp_path) == [
        ".env",
        "backend/app.py",
        "frontend/app.js",
        "frontend/util.mjs",
        "frontend/vendor/jquery.min.js",
    ]


async def test_fingerprints_survive_a_line_shift_and_secrets_stay_out_of_messages(app: Path) -> None:
    tools = [Bandit(), Ruff(), Semgrep()]
    before = await run_in_process(tools, app)
    source = app / "backend" / "app.py"
    source.write_text("# a comment pushed in by a regeneration\n\n\n" + source.read_text())
    after = await run_in_process(tools, app)

    def in_backend(result: ServiceResult) -> dict[tuple[str, str, str], int | None]:
        return {
            (f.tool, f.rule_id, f.fingerprint): f.line for f in result.findings if f.path == "backend/app.py"
        }

    old, new = in_backend(before), in_backend(after)
    assert len(old) >= 20 and set(old) == set(new)  # same findings, same identities …
    assert all(new[key] == line + 3 for key, line in old.items() if line)  # … three lines further down
    secrets = ("notes-app-secret-key-2024", "sk_live_c7dd508c917cc1cda25c1699")
    assert not [f.message for f in after.findings if any(secret in f.message for secret in secrets)]


async def test_pip_audit_is_skipped_as_offline_when_its_advisory_database_cannot_be_reached(
    app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pip_audit, "ADVISORY_HOST", "advisory-database.invalid")
    output = await run_tool(PipAudit(), make_job(app))
    assert output.run.status == "skipped"
    assert (output.run.reason or "").startswith("offline: cannot reach advisory-database.invalid:443")
    closed = await unreachable("127.0.0.1", free_port(), timeout_s=1.0)
    assert closed and closed.startswith("offline: cannot reach 127.0.0.1")


async def test_an_unreachable_advisory_database_is_remembered_for_a_while_then_asked_again(
    app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nothing listens there yet
    first = await remembered_unreachable("127.0.0.1", port, recheck_s=1.5)
    assert first and first.startswith("offline: cannot reach 127.0.0.1")
    server = await asyncio.start_server(lambda _reader, writer: writer.close(), "127.0.0.1", port)
    try:
        # within the window the verdict stands, without asking: the listener that came up is not seen yet
        remembered = await remembered_unreachable("127.0.0.1", port, recheck_s=1.5)
        assert remembered and remembered.startswith(first) and "asked again 1.5 s after" in remembered
        assert await remembered_unreachable("127.0.0.1", port, recheck_s=0) is None  # `0`: always asked
        await remembered_unreachable(
            "127.0.0.1", free_port(), recheck_s=1.5
        )  # another host's verdict is its own
        assert (
            await remembered_unreachable("127.0.0.1", port, recheck_s=1.5) is None
        )  # a reachable host is not kept
    finally:
        server.close()
        await server.wait_closed()
    # a pip-audit run while its database is remembered unreachable is skipped at once, with the reason
    monkeypatch.setattr(pip_audit, "ADVISORY_PORT", port)
    monkeypatch.setattr(pip_audit, "ADVISORY_HOST", "127.0.0.1")
    assert await remembered_unreachable("127.0.0.1", port, recheck_s=60) is not None
    tool, job = PipAudit(), make_job(app)
    await tool.ready(job.settings)  # its version asked before the clock starts
    started = time.monotonic()
    output = await run_tool(tool, job)
    assert output.run.status == "skipped" and "asked again 60 s after" in (output.run.reason or "")
    assert time.monotonic() - started < 3.0  # no connection check waited out
    await asyncio.sleep(1.6)
    server = await asyncio.start_server(lambda _reader, writer: writer.close(), "127.0.0.1", port)
    try:  # after the window the host is asked again and found: no verdict of the past is given
        assert await remembered_unreachable("127.0.0.1", port, recheck_s=1.5) is None
    finally:
        server.close()
        await server.wait_closed()


async def test_npm_audit_audits_a_lockfile_or_says_why_it_could_not(tmp_path: Path) -> None:
    if NpmAudit().locate() is None:
        pytest.skip("npm is not installed here")
    web = tmp_path / "app" / "frontend"
    web.mkdir(parents=True)
    (web / "package.json").write_text(
        '{"name": "shop", "version": "1.0.0", "dependencies": {"lodash": "4.17.4"}}'
    )
    lock = {
        "name": "shop",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {
            "": {"name": "shop", "version": "1.0.0", "dependencies": {"lodash": "4.17.4"}},
            "node_modules/lodash": {
                "version": "4.17.4",
                "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.4.tgz",
            },
        },
    }
    (web / "package-lock.json").write_text(json.dumps(lock, indent=2))
    output = await run_tool(NpmAudit(), make_job(tmp_path / "app"))
    run = output.run
    if run.status == "skipped":  # no registry, or one (a mirror) that does not answer audits
        assert (run.reason or "").startswith(("offline: ", "the registry's advisory database did not answer"))
    else:  # lodash 4.17.4 has published advisories
        assert run.status == "success" and run.command[-2:] == ["--prefix", "frontend"]
        assert run.findings_count == len(output.findings) > 0
        assert all(
            f.path == "frontend/package-lock.json" and f.category == "dependency" for f in output.findings
        )


async def test_a_tools_version_is_asked_once_by_a_burst_of_tasks_and_once_across_starts(
    tmp_path: Path,
) -> None:
    calls = tmp_path / "calls"
    script = tmp_path / "counted"
    script.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nsleep 0.3\necho "counted 1.2.3"\n')
    script.chmod(0o755)

    class Counted(Ruff):
        program = str(script)

    settings = make_job(None, env={"ASSAY_TOOL_CACHE_DIR": str(tmp_path / "cache")}).settings
    tool = Counted()
    healths = await asyncio.gather(*(tool.health(settings) for _ in range(8)))
    assert {(health.available, health.version) for health in healths} == {(True, "1.2.3")}
    assert calls.read_text().splitlines() == ["--version"]
    assert (await tool.health(settings)).version == "1.2.3"  # kept: not asked again
    assert calls.read_text().splitlines() == ["--version"]
    # remembered across starts (a new analyzer process: a new tool), while the executable is the same file
    assert (await Counted().health(settings)).version == "1.2.3"
    assert calls.read_text().splitlines() == ["--version"]
    script.write_text(script.read_text().replace("1.2.3", "1.2.4"))  # upgraded in place: another file
    assert (await Counted().health(settings)).version == "1.2.4"
    assert calls.read_text().splitlines() == ["--version", "--version"]
    # an unreadable record is only a cache: the tool is asked again
    (tmp_path / "cache" / "versions.json").write_text("{not json")
    assert (await Counted().health(settings)).version == "1.2.4"
    assert calls.read_text().splitlines() == ["--version"] * 3
