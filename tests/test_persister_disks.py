"""A results disk that refuses writes, for real: the persister (in-process, real nats-server, real SQLite file)
writing onto a small tmpfs that is full, or remounted read-only. It tries again with backoff; freed in time, the task
completes with a whole folder; past ASSAY_RESULTS_WRITE_LIMIT_S the task is `failed` with the reason and nothing
of its folder is visible.

Mounting needs root (as the test machine runs); elsewhere these tests are skipped, saying so."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.persister.upkeep.integrity import check
from services.persister.upkeep.repair import repair
from shared.jetstream.natsd import EmbeddedNats
from shared.store.database import sessions
from tests.support.gateway import migrate_database
from tests.support.persister import (
    eventually,
    publish_scenario,
    read_json,
    result_folder,
    running_persister,
    scenario,
    service_result,
    sha256_of,
)


class SmallDisk:
    """A 1 MiB tmpfs mounted where the persister's results go."""

    def __init__(self, mount: Path) -> None:
        self.mount = mount
        self.filler = mount / "filler"

    def _remount(self, mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.mount)], check=True, capture_output=True)

    def fill(self) -> None:
        """Write until the disk is full (ENOSPC), keeping the bytes in one file."""
        with contextlib.suppress(OSError), self.filler.open("wb") as handle:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()

    def free(self) -> None:
        self.filler.unlink()

    def read_only(self) -> None:
        self._remount("ro")

    def writable(self) -> None:
        self._remount("rw")

    def files(self) -> set[str]:
        """Every file on the disk, relative to it."""
        return {path.relative_to(self.mount).as_posix() for path in self.mount.rglob("*") if path.is_file()}

    def visible(self) -> set[str]:
        """Every file and folder on the disk, relative to it."""
        return {path.relative_to(self.mount).as_posix() for path in self.mount.rglob("*")}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    mount = tmp_path / "persister" / "results"
    mount.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip(
            "mounting a small tmpfs needs root; a full or read-only disk cannot be made otherwise here"
        )
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield SmallDisk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


async def test_a_full_disk_is_retried_and_the_task_completes_once_space_is_freed(
    tmp_path: Path,
    nats_server: EmbeddedNats,
    database_url: str,
    small_disk: SmallDisk,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="services.persister.disk")
    await migrate_database(database_url)
    small_disk.fill()
    case = scenario(service_result(count=50))
    async with running_persister(
        nats_server.url, database_url, tmp_path / "persister", write_limit_s=300
    ) as harness:
        await publish_scenario(harness, case)

        async def refused() -> bool:
            return any("No space left on device" in record.getMessage() for record in caplog.records)

        await eventually(refused, 30, "the persister never met the full disk", harness.persister)
        row = await harness.task(case.request.task.id)
        assert row is not None and row.status not in ("completed", "failed")
        assert small_disk.files() == {"filler"}  # no half file, staged or final

        small_disk.free()
        task = await harness.wait_status(case.request.task.id, "completed", timeout_s=90)

        folder = result_folder(harness, task)
        manifest = read_json(folder / "manifest.json")
        for entry in manifest["files"]:
            assert sha256_of(folder / entry["path"]) == entry["sha256"]
        assert task.findings_count == 50
        assert not [name for name in small_disk.visible() if ".tmp-" in name]


async def test_a_read_only_disk_past_the_limit_fails_the_task_with_the_reason_and_shows_nothing(
    tmp_path: Path, nats_server: EmbeddedNats, database_url: str, small_disk: SmallDisk
) -> None:
    await migrate_database(database_url)
    small_disk.read_only()
    case = scenario(service_result(count=10))
    async with running_persister(
        nats_server.url, database_url, tmp_path / "persister", write_limit_s=2
    ) as harness:
        await publish_scenario(harness, case)
        task = await harness.wait_status(case.request.task.id, "failed", timeout_s=60)
        await harness.drained()

        assert task.result_dir is None
        assert task.status_reason is not None
        assert "Read-only file system" in task.status_reason
        assert "ASSAY_RESULTS_WRITE_LIMIT_S" in task.status_reason
        assert small_disk.visible() == set()  # not a file, not a folder, not a temporary one

        # Once the disk takes writes again, `assay fsck --repair` writes the folder from the database.
        small_disk.writable()
        factory = sessions(harness.engine)
        found = await check(factory, harness.results_dir)
        assert [(problem.kind, problem.task_id) for problem in found] == [("no_folder", task.task_id)]
        [done] = await repair(factory, harness.results_dir, found)
        assert done.action == "rebuilt", done.detail
        assert await check(factory, harness.results_dir) == []
        row = await harness.task(task.task_id)
        assert row is not None and row.status == "failed" and row.result_dir is not None
