"""Content-addressed reuse of tool runs, with the real static tools on copies of the sample apps: an unchanged app
is not analyzed again, a changed file is, and a new tool version, rule file or `fresh` request runs the tool again.
The store itself: atomic entries shared by replicas, bounded and pruned least recently used first."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from services.analyzers.base.reuse import ReuseStore, StoredRun
from services.analyzers.base.runner import run_tools
from services.analyzers.base.tool import Tool
from services.analyzers.static.analyzer import build_analyzer
from services.analyzers.static.tools import semgrep
from services.analyzers.static.tools.bandit import Bandit
from services.analyzers.static.tools.pip_audit import PipAudit
from services.analyzers.static.tools.pylint import Pylint
from services.analyzers.static.tools.ruff import Ruff
from services.analyzers.static.tools.semgrep import Semgrep
from shared.results.findings import Finding
from shared.wire.protocol import ServiceResult
from tests.support.static import copy_sample, make_job, write_many_modules

FIRST, SECOND, THIRD = "task_000000000001", "task_000000000002", "task_000000000003"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return copy_sample(tmp_path / "apps")


@pytest.fixture
def store(tmp_path: Path) -> ReuseStore:
    return ReuseStore(tmp_path / "reuse", 64 * 1024 * 1024)


async def analyze(
    tools: list[Tool],
    app: Path,
    store: ReuseStore,
    task_id: str,
    options: dict[str, object] | None = None,
    env: dict[str, str] | None = None,
) -> ServiceResult:
    job = make_job(app, options, 300.0, reuse=store, task_id=task_id, env=env)
    return await run_tools("static", tools, job)


def by_file(findings: list[Finding], tool: str) -> dict[str | None, list[Finding]]:
    grouped: dict[str | None, list[Finding]] = {}
    for finding in findings:
        if finding.tool == tool:
            grouped.setdefault(finding.path, []).append(finding)
    return grouped


def key(finding: Finding) -> tuple[str, str, str, int]:
    return (finding.tool, finding.path or "", finding.fingerprint, finding.line or 0)


async def test_an_unchanged_app_reuses_every_tool_with_identical_findings(
    app: Path, store: ReuseStore, tmp_path: Path
) -> None:
    tools = build_analyzer().tools
    first = await analyze(tools, app, store, FIRST)
    ran = {run.tool for run in first.tools if run.status == "success"}
    assert {"bandit", "ruff", "pylint", "mypy", "semgrep"} <= ran
    # another copy of the same app, as a study analyzing it again would see it
    again = copy_sample(tmp_path / "again")
    second = await analyze(tools, again, store, SECOND)
    runs = {run.tool: run for run in second.tools}
    for tool in ran:
        assert runs[tool].status == "reused", tool
        assert runs[tool].reused_from == FIRST, tool
        assert runs[tool].files_reused == runs[tool].files_analyzed > 0, tool
    assert sorted(map(key, second.findings)) == sorted(map(key, first.findings))
    assert msgspec.json.encode(sorted(second.findings, key=key)) == msgspec.json.encode(
        sorted(first.findings, key=key)
    )
    assert second.status == "success"


async def test_one_changed_file_is_analyzed_again_and_the_others_reused(app: Path, store: ReuseStore) -> None:
    write_many_modules(app, 3)
    tools: list[Tool] = [Ruff(), Bandit(), Pylint()]
    first = await analyze(tools, app, store, FIRST)
    changed = app / "backend" / "store_1.py"
    changed.write_text(changed.read_text() + "\n\ndef run(command):\n    return eval(command)\n")
    second = await analyze(tools, app, store, SECOND)
    runs = {run.tool: run for run in second.tools}
    for tool in ("ruff", "bandit"):
        run = runs[tool]
        assert run.status == "success", tool
        assert (run.files_analyzed, run.files_reused) == (4, 3), (
            tool
        )  # app.py and store_0..2, one of them changed
        assert run.reused_from == FIRST, tool
        before, after = by_file(first.findings, tool), by_file(second.findings, tool)
        assert after["backend/store_1.py"] != before.get("backend/store_1.py"), tool
        assert any(f.line and f.line > 20 for f in after["backend/store_1.py"]), tool  # the eval just added
        unchanged = set(before) | set(after) - {"backend/store_1.py"}
        for path in unchanged - {"backend/store_1.py"}:
            assert after.get(path) == before.get(path), (tool, path)
    # pylint looks across files (duplicate code, imports): it runs again over the whole app
    assert (runs["pylint"].status, runs["pylint"].files_reused) == ("success", 0)
    third = await analyze(tools, app, store, THIRD)
    assert {run.tool: (run.status, run.reused_from) for run in third.tools} == {
        "ruff": ("reused", FIRST),
        "bandit": ("reused", FIRST),
        "pylint": ("reused", SECOND),
    }


async def test_a_new_tool_version_runs_it_again(app: Path, store: ReuseStore) -> None:
    ruff = Ruff()
    first = await analyze([ruff], app, store, FIRST)
    program = ruff.locate()
    assert program is not None and first.tools[0].status == "success"
    # the version the executable reports is an input: an upgraded ruff (here: one reporting another version)
    ruff._versions[program] = "999.0.0"
    second = await analyze([ruff], app, store, SECOND)
    assert (second.tools[0].status, second.tools[0].files_reused) == ("success", 0)
    assert (await analyze([ruff], app, store, THIRD)).tools[0].reused_from == SECOND


async def test_a_changed_rule_file_runs_semgrep_again(
    app: Path, store: ReuseStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules"  # a copy of Assay's rules: a rule file, or a folder of them
    if semgrep.RULES.is_dir():
        shutil.copytree(semgrep.RULES, rules)
    else:
        rules = rules.with_suffix(".yml")
        shutil.copy(semgrep.RULES, rules)
    monkeypatch.setattr(semgrep, "RULES", rules)
    first = await analyze([Semgrep()], app, store, FIRST)
    assert first.tools[0].status == "success" and first.findings
    assert (await analyze([Semgrep()], app, store, SECOND)).tools[0].status == "reused"
    # the same rules, every one lowered to INFO: different rules, so semgrep runs and reports them anew
    for rule_file in [rules] if rules.is_file() else sorted(rules.rglob("*.yml")):
        rule_file.write_text(re.sub(r"severity: [A-Z]+", "severity: INFO", rule_file.read_text()))
    third = await analyze([Semgrep()], app, store, THIRD)
    assert (third.tools[0].status, third.tools[0].reused_from) == ("success", None)
    assert {f.severity for f in first.findings} - {"low"}
    assert {f.severity for f in third.findings} == {"low"}
    assert sorted(f.rule_id for f in third.findings) == sorted(f.rule_id for f in first.findings)


async def test_a_fresh_request_runs_every_tool_again(app: Path, store: ReuseStore) -> None:
    await analyze([Ruff(), Bandit()], app, store, FIRST)
    fresh = await analyze([Ruff(), Bandit()], app, store, SECOND, {"fresh": True})
    assert [(run.status, run.files_reused, run.reused_from) for run in fresh.tools] == [
        ("success", 0, None)
    ] * 2
    # the fresh runs took the place of the first ones
    after = await analyze([Ruff(), Bandit()], app, store, THIRD)
    assert [(run.status, run.reused_from) for run in after.tools] == [("reused", SECOND)] * 2


async def test_an_advisory_database_answer_is_reused_within_its_window_only(
    app: Path, store: ReuseStore
) -> None:
    first = await analyze([PipAudit()], app, store, FIRST)
    if first.tools[0].status == "skipped" and (first.tools[0].reason or "").startswith("offline"):
        pytest.skip(f"no advisory database here: {first.tools[0].reason}")
    assert first.tools[0].reused_from is None
    again = await analyze([PipAudit()], app, store, SECOND)
    assert again.tools[0].reused_from == FIRST
    assert again.tools[0].status == (
        "reused" if first.tools[0].status == "success" else first.tools[0].status
    )
    assert again.findings == first.findings
    asked = await analyze([PipAudit()], app, store, THIRD, env={"ASSAY_ADVISORY_REUSE_S": "0"})
    assert asked.tools[0].reused_from is None  # 0: the database is asked every time


def entry(findings: int) -> StoredRun:
    finding = Finding(tool="ruff", rule_id="F401", severity="low", message="x" * 200, path="app.py", line=1)
    return StoredRun(
        task_id=FIRST, command=["ruff"], exit_code=1, duration_s=0.1, findings=[finding] * findings
    )


def test_the_store_is_pruned_to_its_bound_least_recently_used_first(tmp_path: Path) -> None:
    store = ReuseStore(tmp_path / "reuse", 10 * 1024 * 1024)
    keys = [f"{index:02x}" + "0" * 62 for index in range(20)]
    for age, key_ in enumerate(keys):
        store.put(key_, entry(20))
        path = tmp_path / "reuse" / key_[:2] / key_
        os.utime(path, (time.time() - 1000 + age, time.time() - 1000 + age))
    assert store.get(keys[0]) is not None  # used now: the most recent
    size = (tmp_path / "reuse" / keys[0][:2] / keys[0]).stat().st_size
    tally = store.prune(max_bytes=size * 5)
    assert (tally.removed, tally.kept) == (15, 5)
    assert tally.kept_bytes <= size * 5
    assert store.get(keys[0]) is not None and store.get(keys[19]) is not None
    assert store.get(keys[1]) is None and store.get(keys[14]) is None


def test_the_store_keeps_itself_under_its_bound_as_it_grows(tmp_path: Path) -> None:
    store = ReuseStore(tmp_path / "reuse", 20_000)
    for index in range(200):
        store.put(f"{index:064x}", entry(5))
    total = sum(path.stat().st_size for path in (tmp_path / "reuse").glob("*/*"))
    assert total <= 20_000 * 1.2  # pruned back to the bound after each tenth of it written


async def test_replicas_sharing_a_store_never_read_half_an_entry(tmp_path: Path) -> None:
    """Two replicas write the same keys at once while a third reads them: every read is a whole entry or a miss."""
    replicas = [ReuseStore(tmp_path / "reuse", 64 * 1024 * 1024) for _ in range(3)]
    stored = entry(400)
    keys = [f"{index:064x}" for index in range(30)]

    def write(store: ReuseStore) -> None:
        for key_ in keys:
            store.put(key_, stored)

    def read(store: ReuseStore) -> list[StoredRun | None]:
        return [store.get(key_) for _ in range(5) for key_ in keys]

    _, _, reads = await asyncio.gather(
        asyncio.to_thread(write, replicas[0]),
        asyncio.to_thread(write, replicas[1]),
        asyncio.to_thread(read, replicas[2]),
    )
    assert all(found is None or found == stored for found in reads)
    assert all(replicas[2].get(key_) == stored for key_ in keys)
    assert not list((tmp_path / "reuse").glob("*/*.part"))  # no leftover temporary file


async def test_assay_prune_removes_stored_runs_unused_for_longer_than_asked(tmp_path: Path) -> None:
    folder = tmp_path / "reuse"
    store = ReuseStore(folder, 64 * 1024 * 1024)
    old, recent = [f"{index:064x}" for index in range(3)], [f"{index:064x}" for index in range(3, 5)]
    for key_ in old + recent:
        store.put(key_, entry(3))
    forty_days_ago = time.time() - 40 * 86400
    for key_ in old:
        os.utime(folder / key_[:2] / key_, (forty_days_ago, forty_days_ago))
    env = {
        **os.environ,
        "ASSAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'assay.db'}",
        "ASSAY_RESULTS_DIR": str(tmp_path / "results"),
        "ASSAY_REUSE_DIR": str(folder),
    }
    command = [sys.executable, "-m", "services.cli", "prune", "--older-than", "30d", "--json"]
    dry = await asyncio.to_thread(
        subprocess.run, [*command, "--dry-run"], env=env, capture_output=True, check=True
    )
    would = json.loads(dry.stdout)["reuse"]
    assert (would["removed"], would["kept"]) == (3, 2)
    assert all((folder / key_[:2] / key_).is_file() for key_ in old)  # (a get would mark them used)
    done = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, check=True)
    assert json.loads(done.stdout)["reuse"] == would
    assert [store.get(key_) for key_ in old] == [None] * 3
    assert all(store.get(key_) is not None for key_ in recent)
