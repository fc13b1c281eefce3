"""`assay fsck`, the checking side: every finished task row against its result folder, and every folder against
the rows. Reads only; `repair` acts on what this finds.

A finished row (terminal status) must name a folder that exists inside the results root, whose `manifest.json`
names this task and lists every file of the folder with its size and sha256 (all right, none missing, none
unlisted), and whose primary document holds as many findings as the database has rows for the task (and as the
row's `findings_count` says). A task folder whose task has no row, or whose row names another folder, is an
orphan. A task still pending or running is not checked: its folder may be being written right now.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

import msgspec
from sqlalchemy import func, select

from services.persister.document import MANIFEST_NAME
from services.persister.sessions import Sessions
from shared.store.models import FindingRow, Task
from shared.store.paths import UnsafePathError, inside
from shared.wire.messages import TERMINAL_STATUSES

QUARANTINE = ".fsck"  # under the results root: folders `fsck --repair` replaced, kept for a person to look at
PRUNING = ".prune"  # under the results root: folders `prune` is removing (its journal: see prune.py)
_TASK_FOLDER = re.compile(r"^task_[a-z]+_([0-9a-f]{12})_\d{8}T\d{6}Z$")

# What a difference is about; every kind but the last two is fixed by rebuilding the folder from the database.
REBUILT_KINDS = frozenset(
    {
        "no_folder",
        "folder_missing",
        "manifest",
        "file_missing",
        "file_changed",
        "file_unlisted",
        "findings_count",
    }
)
PRUNE_INTERRUPTED = "prune_interrupted"  # finished by `fsck --repair` (or the next prune)
ORPHAN = "orphan_folder"  # reported, never removed: no row says what it is


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """One difference between the database and the files."""

    kind: str
    task_id: str | None
    result_dir: str | None  # relative to the results root
    detail: str


@dataclass(frozen=True)
class FinishedRow:
    """What the check needs of one finished task row."""

    task_id: str
    status: str
    status_reason: str | None
    result_dir: str | None
    findings_count: int  # as the row says
    finding_rows: int  # rows in `findings`


class _ListedFile(msgspec.Struct):
    path: str
    size: int
    sha256: str


class _Manifest(msgspec.Struct):
    task_id: str
    primary_result: str
    files: list[_ListedFile]


class _Results(msgspec.Struct):
    findings: list[msgspec.Raw]


class _Primary(msgspec.Struct):
    results: _Results


async def finished_rows(sessions: Sessions) -> list[FinishedRow]:
    """Every terminal task row, with its count of finding rows."""
    async with sessions() as session:
        counts = dict(
            (
                await session.execute(select(FindingRow.task_id, func.count()).group_by(FindingRow.task_id))
            ).all()
        )
        query = select(
            Task.task_id, Task.status, Task.status_reason, Task.result_dir, Task.findings_count
        ).where(Task.status.in_(TERMINAL_STATUSES))
        rows = (await session.execute(query.order_by(Task.task_id))).all()
    return [
        FinishedRow(task_id, status, reason, result_dir, count, counts.get(task_id, 0))
        for task_id, status, reason, result_dir, count in rows
    ]


def folder_of(results_root: Path, result_dir: str) -> Path:
    """The folder a row names, refused when it would leave the results root."""
    return inside(results_root, *PurePosixPath(result_dir).parts)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


def _content_problems(folder: Path, row: FinishedRow) -> Iterator[tuple[str, str]]:
    try:
        manifest = msgspec.json.decode((folder / MANIFEST_NAME).read_bytes(), type=_Manifest)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as error:
        yield "manifest", f"{MANIFEST_NAME} unreadable: {error}"
        return
    if manifest.task_id != row.task_id:
        yield "manifest", f"{MANIFEST_NAME} is of task {manifest.task_id}"
    present = _files(folder) - {MANIFEST_NAME}
    listed = {entry.path: entry for entry in manifest.files}
    for name in sorted(present - set(listed)):
        yield "file_unlisted", f"{name} is not in {MANIFEST_NAME}"
    for name, entry in sorted(listed.items()):
        if name not in present:
            yield "file_missing", f"{name} is listed but missing"
            continue
        path = folder / name
        size, digest = path.stat().st_size, _sha256(path)
        if (size, digest) != (entry.size, entry.sha256):
            yield (
                "file_changed",
                f"{name}: {size} bytes with sha256 {digest}, listed {entry.size} with {entry.sha256}",
            )
    if manifest.primary_result not in present:
        if manifest.primary_result not in listed:  # else said above
            yield "manifest", f"its primary result {manifest.primary_result} is neither listed nor present"
        return
    try:
        primary = msgspec.json.decode((folder / manifest.primary_result).read_bytes(), type=_Primary)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as error:
        yield "file_changed", f"{manifest.primary_result} unreadable: {error}"
        return
    found = len(primary.results.findings)
    if not found == row.finding_rows == row.findings_count:
        yield (
            "findings_count",
            f"the folder has {found} findings, the database {row.finding_rows} finding rows "
            f"(the task row says {row.findings_count})",
        )


def row_problems(results_root: Path, row: FinishedRow) -> list[Problem]:
    """What is wrong between one finished row and its folder (blocking file I/O: run it in a thread)."""

    def problem(kind: str, detail: str) -> Problem:
        return Problem(kind=kind, task_id=row.task_id, result_dir=row.result_dir, detail=detail)

    if row.result_dir is None:
        return [problem("no_folder", f"{row.status} task names no result folder ({row.status_reason})")]
    try:
        folder = folder_of(results_root, row.result_dir)
    except UnsafePathError as error:
        return [problem("folder_missing", str(error))]
    if not folder.is_dir():
        if (results_root / PRUNING / row.task_id).exists():
            return [
                problem(PRUNE_INTERRUPTED, "a prune moved the folder away and stopped before the rows went")
            ]
        return [problem("folder_missing", f"{row.result_dir} does not exist")]
    return [problem(kind, detail) for kind, detail in _content_problems(folder, row)]


def _task_folders(results_root: Path) -> Iterator[tuple[str, str]]:
    """(task id, folder relative to the root) of every result folder: `<model>/app<N>/task_…`."""
    for model in sorted(results_root.iterdir()) if results_root.is_dir() else []:
        if model.name.startswith(".") or not model.is_dir():
            continue
        for app in sorted(model.glob("app*")):
            for folder in sorted(app.iterdir()) if app.is_dir() else []:
                match = _TASK_FOLDER.match(folder.name)
                if match and folder.is_dir():
                    yield f"task_{match.group(1)}", folder.relative_to(results_root).as_posix()


def pruning_entries(results_root: Path) -> list[str]:
    """Task ids under PRUNING: prunes that stopped half-way."""
    journal = results_root / PRUNING
    return sorted(entry.name for entry in journal.iterdir()) if journal.is_dir() else []


def folder_problems(
    folders: list[tuple[str, str]], pruning: list[str], named: dict[str, str | None], known: set[str]
) -> list[Problem]:
    """Task folders (`folders`: task id, folder) no finished row names (`named`: task id → its folder; `known`:
    every task id with a row, so that a folder of a task being finished right now is left alone), and prunes that
    stopped half-way (`pruning`: the task ids under PRUNING)."""
    found = []
    for task_id, relative in folders:
        if task_id not in known:
            found.append(Problem(kind=ORPHAN, task_id=task_id, result_dir=relative, detail="no task row"))
        elif task_id in named and named[task_id] != relative:
            detail = f"the task row names {named[task_id]}"
            found.append(Problem(kind=ORPHAN, task_id=task_id, result_dir=relative, detail=detail))
    for task_id in pruning:
        if task_id not in named:  # a finished row's interrupted prune is reported by `row_problems`
            detail = "a prune moved the folder away and stopped; its rows are gone or going"
            found.append(Problem(kind=PRUNE_INTERRUPTED, task_id=task_id, result_dir=None, detail=detail))
    return found


async def known_task_ids(sessions: Sessions) -> set[str]:
    async with sessions() as session:
        return set((await session.scalars(select(Task.task_id))).all())


async def check(sessions: Sessions, results_root: Path) -> list[Problem]:
    """Every difference between the database and the result folders, rows first, then folders."""
    rows = await finished_rows(sessions)

    def scan() -> tuple[list[Problem], list[tuple[str, str]], list[str]]:
        found = [problem for row in rows for problem in row_problems(results_root, row)]
        return found, list(_task_folders(results_root)), pruning_entries(results_root)

    found, folders, pruning = await asyncio.to_thread(scan)
    # Read after the scan: a task's row exists before its folder, so every folder found has its row by now.
    known = await known_task_ids(sessions)
    named = {row.task_id: row.result_dir for row in rows}
    return found + folder_problems(folders, pruning, named, known)


def quarantine_name(task_id: str, when: datetime) -> str:
    """`<task_id>-<YYYYmmddTHHMMSSZ>`: where `--repair` keeps a folder it replaced, under QUARANTINE."""
    return f"{task_id}-{when.strftime('%Y%m%dT%H%M%SZ')}"
