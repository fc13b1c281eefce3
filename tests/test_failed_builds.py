"""A preparation that failed is remembered for ASSAY_APP_PREPARE_FAILURE_MEMORY_S: the next task of the same
requirements fails at once with the first one's reason and log instead of paying pip's failure again; a fresh task,
a changed requirements file, the memory's end or `0` builds again, and a build that succeeds forgets the failure."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from services.orchestrator.apps.errors import AppNotStarted
from services.orchestrator.apps.prepare import _cached
from services.orchestrator.apps.runner import AppRunner
from tests.support.apps import app_request, make_app, needs_bwrap, runner_settings

KEY = "venv-0123456789abcdef01234567-89abcdef"
STEP = "$ pip install -r requirements.txt\nERROR: No matching distribution found\n[pip: exit 1, 1.2 s]\n"
REASON = "app did not start: installing backend/requirements.txt failed (pip: exit 1)"


class Builds:
    """A build that fails as pip does (its step in the log, then AppNotStarted) until told to succeed."""

    def __init__(self) -> None:
        self.calls = 0
        self.succeed = False
        self.log: list[str] = []  # the preparation's log, as prepare.py passes it to every step

    async def __call__(self, folder: Path) -> None:
        self.calls += 1
        if not self.succeed:
            self.log.append(STEP)
            raise AppNotStarted(REASON)
        (folder / "lib").mkdir()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """An empty cache folder of prepared environments."""
    folder = tmp_path / "cache"
    folder.mkdir()
    return folder


async def build(
    cache: Path, builds: Builds, memory_s: float, fresh: bool = False
) -> tuple[Path | str, list[str]]:
    """`_cached`'s folder, or the reason it failed; and the log of this preparation."""
    builds.log = []
    try:
        return await _cached(KEY, cache, builds, builds.log, memory_s, fresh), builds.log
    except AppNotStarted as error:
        return str(error), builds.log


async def test_a_failed_build_is_remembered_then_built_again_when_fresh_and_forgotten_once_it_succeeds(
    cache: Path,
) -> None:
    builds = Builds()

    first, first_log = await build(cache, builds, memory_s=600)
    assert first == REASON and first_log == [STEP] and builds.calls == 1

    again, again_log = await build(cache, builds, memory_s=600)
    assert builds.calls == 1  # not built again
    assert isinstance(again, str) and again.startswith(REASON) and "remembered" in again
    assert "ASSAY_APP_PREPARE_FAILURE_MEMORY_S" in again
    # the first build's log, as the task's app.json and failing requirement are read from it, then the mark
    assert again_log[:-1] == [STEP] and "remembered: not run again" in again_log[-1]

    fresh, fresh_log = await build(cache, builds, memory_s=600, fresh=True)
    assert builds.calls == 2 and fresh == REASON and fresh_log == [STEP]

    builds.succeed = True
    built, _ = await build(cache, builds, memory_s=600, fresh=True)
    assert builds.calls == 3 and built == cache / KEY and (cache / KEY / "lib").is_dir()
    assert not (cache / f"{KEY}.failed.json").exists()  # the failure no longer holds
    builds.succeed = False
    reused, reused_log = await build(cache, builds, memory_s=600)
    assert reused == cache / KEY and builds.calls == 3 and "reused from the cache" in reused_log[-1]


async def test_a_remembered_failure_ends_with_its_time_and_nothing_is_remembered_with_0(cache: Path) -> None:
    builds = Builds()
    await build(cache, builds, memory_s=0)
    assert not await asyncio.to_thread(lambda: list(cache.glob("*.failed.json")))  # 0: nothing recorded
    await build(cache, builds, memory_s=0)
    assert builds.calls == 2

    await build(cache, builds, memory_s=0.3)
    remembered, _ = await build(cache, builds, memory_s=0.3)
    assert builds.calls == 3 and "remembered" in str(remembered)
    await asyncio.sleep(0.4)
    await build(cache, builds, memory_s=0.3)
    assert builds.calls == 4


async def test_an_unreadable_record_is_no_memory(cache: Path) -> None:
    (cache / f"{KEY}.failed.json").write_bytes(msgspec.json.encode({"reason": 1}))
    builds = Builds()
    reason, _ = await build(cache, builds, memory_s=600)
    assert builds.calls == 1 and reason == REASON


MISSING = "assay-no-such-package-kept==1.0\n"


@needs_bwrap
@pytest.mark.timeout(600)
async def test_tasks_of_an_app_whose_requirements_failed_are_told_at_once_unless_fresh_or_changed(
    tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    app = make_app(
        apps, "remembered", 1, {"backend/app.py": "print(1)\n", "backend/requirements.txt": MISSING}
    )
    runner = AppRunner(
        runner_settings(tmp_path, apps, app_work_dir, ASSAY_APP_PREPARE_FAILURE_MEMORY_S="600")
    )
    request = app_request("task_00000000f001", "remembered", 1)

    async def reason(fresh: bool = False) -> str:
        asked = msgspec.structs.replace(request, options={"fresh": True}) if fresh else request
        env = await runner.python_environment(asked)
        assert env is not None and env.venv is None and env.reason is not None
        return env.reason

    first = await reason()
    assert first.startswith("its preparation failed") and "(remembered" not in first
    second = await reason()
    assert second.startswith(first) and "(remembered:" in second
    assert "(remembered" not in await reason(fresh=True)  # pip ran again
    (app / "backend" / "requirements.txt").write_text(MISSING + "# changed\n")
    assert "(remembered" not in await reason()  # another requirements file: another build
