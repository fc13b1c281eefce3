"""`assay fsck [--repair]` and `assay prune` as subprocesses, on tasks the real persister finished (in-process, real
nats-server), on a SQLite file and on PostgreSQL (skipped, saying why, when no server answers at 127.0.0.1:5432):
each kind of damage reported, repaired by writing the folder again or by marking the row, nothing deleted; old
tasks removed rows and folders together, and an interrupted prune found and completed."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from services.gateway.queries import task_detail
from shared.jetstream.natsd import EmbeddedNats
from shared.store.database import sessions
from shared.store.models import FindingRow, ProcessedEvent, ServiceRun, Task, ToolRunRow
from shared.wire.messages import utcnow
from tests.support.gateway import migrate_database
from tests.support.persister import (
    APP,
    MODEL,
    Harness,
    publish_scenario,
    read_json,
    running_persister,
    scenario,
    service_result,
    sha256_of,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
async def harness(tmp_path: Path, nats_server: EmbeddedNats, any_database: str) -> AsyncIterator[Harness]:
    url = await migrate_database(any_database)
    async with running_persister(nats_server.url, url, tmp_path / "persister") as running:
        yield running


async def finished_tasks(harness: Harness, count: int) -> list[Task]:
    cases = [scenario(service_result(count=5 + index)) for index in range(count)]
    for case in cases:
        await publish_scenario(harness, case)
    return [await harness.wait_status(case.request.task.id, "completed") for case in cases]


async def assay(harness: Harness, *args: str) -> tuple[int, Any]:
    """`assay <args> --json` on the persister's database and results; (exit code, the JSON it printed)."""
    env = {
        **os.environ,
        "ASSAY_DATABASE_URL": harness.settings.database_url,
        "ASSAY_RESULTS_DIR": str(harness.results_dir),
        "ASSAY_REUSE_DIR": str(harness.results_dir.parent / "reuse"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        *args,
        "--json",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    assert process.returncode in (0, 1), err.decode()
    return process.returncode, json.loads(out)


async def change(harness: Harness, statement: Any) -> None:
    async with sessions(harness.engine)() as session, session.begin():
        await session.execute(statement)


def kinds(answer: dict[str, Any]) -> set[tuple[str, str | None]]:
    return {(problem["kind"], problem["task_id"]) for problem in answer["problems"]}


def folder_checks_out(folder: Path) -> bool:
    manifest = read_json(folder / "manifest.json")
    listed = {entry["path"] for entry in manifest["files"]}
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {"manifest.json"}
    return listed == present and all(
        sha256_of(folder / entry["path"]) == entry["sha256"] for entry in manifest["files"]
    )


async def test_fsck_reports_each_difference_and_repair_rewrites_or_marks_never_deleting(
    harness: Harness,
) -> None:
    missing, changed, short, unwritten, intact = await finished_tasks(harness, 5)
    root = harness.results_dir
    assert await assay(harness, "fsck") == (0, {"results_dir": str(root), "problems": [], "repairs": []})

    assert missing.result_dir and changed.result_dir and short.result_dir and unwritten.result_dir
    shutil.rmtree(root / missing.result_dir)
    damaged = root / changed.result_dir
    with (damaged / "services" / "static.json").open("ab") as handle:
        handle.write(b" ")
    (damaged / "stray.txt").write_text("not listed")
    await change(
        harness,
        delete(FindingRow).where(
            FindingRow.id
            == select(func.min(FindingRow.id)).where(FindingRow.task_id == short.task_id).scalar_subquery()
        ),
    )
    # What a disk that refused the folder past the limit leaves: a failed row naming no folder.
    shutil.rmtree(root / unwritten.result_dir)
    await change(
        harness,
        update(Task).where(Task.task_id == unwritten.task_id).values(status="failed", result_dir=None),
    )
    orphan = root / MODEL / f"app{APP}" / "task_static_0123456789ab_20260101T000000Z"
    orphan.mkdir()
    (orphan / "manifest.json").write_text("{}")

    code, found = await assay(harness, "fsck")

    assert code == 1
    assert kinds(found) == {
        ("folder_missing", missing.task_id),
        ("file_changed", changed.task_id),
        ("file_unlisted", changed.task_id),
        ("findings_count", short.task_id),
        ("no_folder", unwritten.task_id),
        ("orphan_folder", "task_0123456789ab"),
    }

    code, repaired = await assay(harness, "fsck", "--repair")

    actions = {(done["task_id"], done["action"]) for done in repaired["repairs"]}
    assert actions == {
        (missing.task_id, "rebuilt"),
        (changed.task_id, "rebuilt"),
        (unwritten.task_id, "rebuilt"),
        (short.task_id, "marked"),
        ("task_0123456789ab", "kept"),
    }
    for task in (missing, changed, unwritten):
        row = await harness.task(task.task_id)
        assert row is not None and row.result_dir and row.integrity_note
        assert "from the database" in row.integrity_note
        folder = root / row.result_dir
        assert folder_checks_out(folder)
        primary = read_json(folder / f"{MODEL}_app{APP}_{task.task_id}.json")
        assert len(primary["results"]["findings"]) == await harness.count(FindingRow, task.task_id)
    # The damaged folder was moved aside whole, not deleted.
    [kept] = (root / ".fsck").iterdir()
    assert (kept / "stray.txt").read_text() == "not listed"
    assert str(kept.relative_to(root)) in ((await harness.task(changed.task_id)).integrity_note or "")  # type: ignore[union-attr]
    short_row = await harness.task(short.task_id)
    assert short_row is not None and "checks out" in (short_row.integrity_note or "")
    # The mark is part of the task as the API answers it (and `assay status` prints it).
    detail = await task_detail(sessions(harness.engine), short.task_id)
    assert detail is not None and detail.integrity_note == short_row.integrity_note
    assert folder_checks_out(root / (short.result_dir or ""))
    assert orphan.is_dir()
    intact_row = await harness.task(intact.task_id)
    assert intact_row is not None and intact_row.integrity_note is None

    # What repair could not make right is still reported: the short rows, and the orphan folder.
    code, after = await assay(harness, "fsck")
    assert code == 1
    assert kinds(after) == {("findings_count", short.task_id), ("orphan_folder", "task_0123456789ab")}


async def row_counts(harness: Harness, task_id: str) -> dict[str, int]:
    counts = await harness.counts(task_id)
    async with sessions(harness.engine)() as session:
        counts["processed_events"] = int(
            await session.scalar(select(func.count()).where(ProcessedEvent.task_id == task_id)) or 0
        )
        counts["tasks"] = 1 if await session.get(Task, task_id) else 0
    return counts


async def age(harness: Harness, days: int, *tasks: Task) -> None:
    when = utcnow() - timedelta(days=days)
    await change(
        harness, update(Task).where(Task.task_id.in_([t.task_id for t in tasks])).values(finished_at=when)
    )


async def test_prune_removes_old_tasks_rows_and_folders_together(harness: Harness) -> None:
    old, older, recent = await finished_tasks(harness, 3)
    await age(harness, 40, old)
    await age(harness, 400, older)
    before = {task.task_id: await row_counts(harness, task.task_id) for task in (old, older)}
    assert all(count > 0 for counts in before.values() for count in counts.values())

    code, dry = await assay(harness, "prune", "--older-than", "30d", "--dry-run")

    assert code == 0 and dry["dry_run"] is True
    assert [task["task_id"] for task in dry["tasks"]] == [older.task_id, old.task_id]  # oldest first
    assert {task["task_id"]: task["rows"] for task in dry["tasks"]} == before
    assert all((harness.results_dir / (task.result_dir or "")).is_dir() for task in (old, older))

    code, report = await assay(harness, "prune", "--older-than", "30d")

    assert code == 0 and [task["task_id"] for task in report["tasks"]] == [older.task_id, old.task_id]
    assert all(task["folder"] for task in report["tasks"])
    for task in (old, older):
        assert set((await row_counts(harness, task.task_id)).values()) == {0}
        assert not (harness.results_dir / (task.result_dir or "")).exists()
    assert (await row_counts(harness, recent.task_id))["findings"] == 7  # 5 + its index
    assert (harness.results_dir / (recent.result_dir or "")).is_dir()
    assert not any((harness.results_dir / ".prune").iterdir())
    assert await assay(harness, "fsck") == (
        0,
        {"results_dir": str(harness.results_dir), "problems": [], "repairs": []},
    )


async def test_an_interrupted_prune_is_reported_and_completed(harness: Harness) -> None:
    moved, rows_gone = await finished_tasks(harness, 2)
    journal = harness.results_dir / ".prune"
    journal.mkdir()
    # Crashed after step 1 (folder moved, rows still there) and after step 2 (rows gone, folder still moved).
    for task in (moved, rows_gone):
        os.rename(harness.results_dir / (task.result_dir or ""), journal / task.task_id)
    for model in (FindingRow, ToolRunRow, ServiceRun, ProcessedEvent, Task):
        await change(harness, delete(model).where(model.task_id == rows_gone.task_id))

    code, found = await assay(harness, "fsck")

    assert code == 1
    assert kinds(found) == {("prune_interrupted", moved.task_id), ("prune_interrupted", rows_gone.task_id)}

    code, report = await assay(harness, "prune", "--older-than", "3650d")

    assert sorted(report["completed_interrupted"]) == sorted([moved.task_id, rows_gone.task_id])
    assert report["tasks"] == []
    for task in (moved, rows_gone):
        assert set((await row_counts(harness, task.task_id)).values()) == {0}
    assert list(journal.iterdir()) == []
    assert (await assay(harness, "fsck"))[0] == 0
