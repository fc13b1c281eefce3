"""`assay fsck --repair`: what can be made right again, and a note on the row for what was done.

- A finished task whose folder is missing or damaged (manifest, a file missing, changed or unlisted) gets its
  folder written again from the database, through the persister's own writer (`completion.write_rendered`:
  rendered by `document`, atomic). A damaged folder is first moved, whole, to `<results>/.fsck/<task_id>-<time>`:
  nothing is deleted. The database keeps findings, tool runs and service outcomes but not the tools' raw outputs
  nor their own SARIF, so the rebuilt folder lacks those (its SARIF is made from the findings); the row's
  `integrity_note` says so, and where the old folder went.
- A folder whose files all check out but whose findings disagree with the database is the better copy: it is
  kept, and the row is only marked with the difference.
- An interrupted prune is completed (prune.py).
- An orphan folder (no row) is reported and left where it is.
When the folder cannot be written (the disk refuses), the row is marked with the reason instead.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from pathlib import Path

import msgspec
from sqlalchemy import select, update

from services.persister import document
from services.persister.completion import write_rendered
from services.persister.disk import ResultsUnwritable
from services.persister.document import Ending
from services.persister.lookups import TaskSnapshot, snapshot_of
from services.persister.sessions import Sessions
from services.persister.staging import StagedService
from services.persister.upkeep.integrity import (
    ORPHAN,
    PRUNE_INTERRUPTED,
    QUARANTINE,
    REBUILT_KINDS,
    Problem,
    folder_of,
    quarantine_name,
)
from services.persister.upkeep.prune import complete_interrupted
from shared.results.verdicts import Verdicts
from shared.store.models import FindingRow, ServiceRun, Task, ToolRunRow
from shared.store.paths import UnsafePathError, result_dir, result_folder_name
from shared.wire.messages import as_utc, utcnow
from shared.wire.protocol import ServiceResult

NOT_IN_DATABASE = "raw tool outputs and the tools' own SARIF are not kept in the database, so it lacks them"
CONTENT_KINDS = REBUILT_KINDS - {"findings_count"}


class Repair(msgspec.Struct, frozen=True, kw_only=True):
    """What `--repair` did about one task (or one orphan folder)."""

    task_id: str | None
    action: str  # rebuilt | marked | completed_prune | kept
    detail: str


def _staged(run: ServiceRun, tools: list[ToolRunRow], findings: list[FindingRow]) -> StagedService:
    """One service's outcome as the persister staged it, back from its rows."""
    result = msgspec.convert(
        {
            "service": run.service,
            "status": run.status,
            "error": run.error,
            "metrics": run.metrics or {},
            "tools": [
                {
                    "tool": row.tool,
                    "status": row.status,
                    "version": row.version,
                    "command": row.command or [],
                    "exit_code": row.exit_code,
                    "duration_s": row.duration_s,
                    "files_analyzed": row.files_analyzed,
                    "findings_count": row.findings_count,
                    "reason": row.reason,
                    "reused_from": row.reused_from,
                    "files_reused": row.files_reused,
                }
                for row in tools
            ],
            "findings": [
                {
                    "tool": row.tool,
                    "rule_id": row.rule_id,
                    "severity": row.severity,
                    "message": row.message,
                    "path": row.path,
                    "line": row.line,
                    "column": row.column,
                    "end_line": row.end_line,
                    "category": row.category,
                    "cwe": row.cwe,
                    "help_url": row.help_url,
                    "fingerprint": row.fingerprint,
                    "extra": row.extra or {},
                    "origin": row.origin,
                    "proof": row.proof,
                }
                for row in findings
            ],
        },
        ServiceResult,
    )
    return StagedService(
        service=run.service, status=run.status, error=run.error, event_id=run.event_id, result=result
    )


async def _from_database(
    sessions: Sessions, task_id: str
) -> tuple[TaskSnapshot, Ending, list[StagedService]]:
    async with sessions() as session:
        task = await session.get(Task, task_id)
        if task is None:
            raise LookupError(f"task {task_id} has no row any more")
        runs = (await session.scalars(select(ServiceRun).where(ServiceRun.task_id == task_id))).all()
        tools = (await session.scalars(select(ToolRunRow).where(ToolRunRow.task_id == task_id))).all()
        findings = (
            await session.scalars(
                select(FindingRow).where(FindingRow.task_id == task_id).order_by(FindingRow.id)
            )
        ).all()
        snapshot = snapshot_of(task)
        verdicts = msgspec.convert(task.verdicts, Verdicts) if task.verdicts else None
        ending = Ending(
            task.status, task.status_reason, as_utc(task.finished_at) or utcnow(), verdicts=verdicts
        )
    by_service: dict[str, tuple[list[ToolRunRow], list[FindingRow]]] = defaultdict(lambda: ([], []))
    for tool in tools:
        by_service[tool.service][0].append(tool)
    for finding in findings:
        by_service[finding.service][1].append(finding)
    services = [_staged(run, *by_service[run.service]) for run in runs]
    return snapshot, ending, services


async def _mark(sessions: Sessions, task_id: str, note: str, **values: object) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(Task).where(Task.task_id == task_id).values(integrity_note=note, **values)
        )


def _quarantine(results_root: Path, folder: Path, task_id: str) -> str | None:
    """Move a damaged folder, whole, under QUARANTINE; its new place relative to the root (None: none existed)."""
    if not folder.exists():
        return None
    kept = results_root / QUARANTINE / quarantine_name(task_id, utcnow())
    kept.parent.mkdir(exist_ok=True)
    os.rename(folder, kept)
    return kept.relative_to(results_root).as_posix()


def _target(results_root: Path, snapshot: TaskSnapshot) -> tuple[Path, str]:
    """The folder the row names (or, naming none, the one the persister would have written), and the same
    relative to the root."""
    if snapshot.result_dir is not None:
        return folder_of(results_root, snapshot.result_dir), snapshot.result_dir
    task = snapshot.task
    name = result_folder_name(task.analysis_type, task.id, snapshot.created_at)
    final = result_dir(results_root, task.model_slug, task.app_number, name)
    return final, final.relative_to(results_root.resolve()).as_posix()


async def rebuild(sessions: Sessions, results_root: Path, task_id: str, problems: list[Problem]) -> Repair:
    """Write the task's folder again from the database (see the module), and note it on the row."""
    snapshot, ending, services = await _from_database(sessions, task_id)
    said = "; ".join(f"{problem.kind}: {problem.detail}" for problem in problems)
    stamp = utcnow().isoformat(timespec="seconds")
    final, relative = await asyncio.to_thread(_target, results_root, snapshot)
    rendered = await asyncio.to_thread(document.render, snapshot, ending, services)
    kept = None
    try:
        kept = await asyncio.to_thread(_quarantine, results_root, final, task_id)
        await write_rendered(task_id, final, relative, rendered, limit_s=0)
    except (ResultsUnwritable, OSError) as error:
        if kept is not None:  # the damaged folder goes back where the row names it: better than none
            await asyncio.to_thread(os.rename, results_root / kept, final)
        note = f"{stamp} assay fsck could not write the folder again ({said}): {error}"
        await _mark(sessions, task_id, note)
        return Repair(task_id=task_id, action="marked", detail=note)
    where = f"; the previous folder is kept at {kept}" if kept else ""
    note = f"{stamp} assay fsck wrote the folder again from the database ({said}); {NOT_IN_DATABASE}{where}"
    await _mark(sessions, task_id, note, result_dir=relative)
    return Repair(task_id=task_id, action="rebuilt", detail=note)


async def repair(sessions: Sessions, results_root: Path, problems: list[Problem]) -> list[Repair]:
    """Act on what `integrity.check` found, task by task (see the module)."""
    by_task: dict[str, list[Problem]] = defaultdict(list)
    done: list[Repair] = []
    for problem in problems:
        if problem.kind == ORPHAN or problem.task_id is None:
            done.append(
                Repair(
                    task_id=problem.task_id, action="kept", detail=f"{problem.result_dir}: {problem.detail}"
                )
            )
        elif problem.kind == PRUNE_INTERRUPTED:
            await complete_interrupted(sessions, results_root, problem.task_id)
            done.append(Repair(task_id=problem.task_id, action="completed_prune", detail=problem.detail))
        else:
            by_task[problem.task_id].append(problem)
    for task_id, found in by_task.items():
        if any(problem.kind in CONTENT_KINDS for problem in found):
            try:
                done.append(await rebuild(sessions, results_root, task_id, found))
            except (LookupError, UnsafePathError) as error:
                done.append(Repair(task_id=task_id, action="kept", detail=str(error)))
            continue
        # Only the counts differ and every file checks out: the folder is kept, the row says so.
        note = (
            f"{utcnow().isoformat(timespec='seconds')} assay fsck: "
            + "; ".join(problem.detail for problem in found)
            + "; the folder checks out against its manifest and is kept"
        )
        await _mark(sessions, task_id, note)
        done.append(Repair(task_id=task_id, action="marked", detail=note))
    return done
