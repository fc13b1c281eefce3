"""Database against folders, after the fact: every finished task row has its folder, the folder is whole (the
manifest lists exactly the files there, each with its size and sha256), and the finding counts agree (the row, the
finding rows, the primary document); every folder has its finished row.

This is the suite's own check until `assay fsck` exists; `differences` is the one function the suite calls, so
it can become a call of `assay fsck` without touching the scenarios.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tests.support.faults.records import Rows, TaskRow

MANIFEST = "manifest.json"


def _folder_differences(folder: Path, row: TaskRow, finding_rows: int) -> list[str]:
    if not folder.is_dir():
        return [f"folder {row.result_dir} missing"]
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_bytes())
    except (OSError, ValueError) as error:
        return [f"{MANIFEST} unreadable: {error}"]
    found = []
    if manifest.get("task_id") != row.task_id:
        found.append(f"{MANIFEST} names task {manifest.get('task_id')}")
    listed = {entry["path"]: entry for entry in manifest.get("files", [])}
    on_disk = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()} - {
        MANIFEST
    }
    for name in sorted(on_disk ^ set(listed)):
        found.append(f"{name}: {'not in the manifest' if name in on_disk else 'listed but missing'}")
    for name in sorted(on_disk & set(listed)):
        data = (folder / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != listed[name]["sha256"] or len(data) != listed[name]["size"]:
            found.append(f"{name}: sha256 or size differs from the manifest")
    primary = manifest.get("primary_result")
    if primary not in on_disk:
        return [*found, f"primary result {primary} missing"]
    document = json.loads((folder / primary).read_bytes())
    in_document = document["summary"]["total_findings"]
    listed_findings = len(document["results"]["findings"])
    if not row.findings_count == finding_rows == in_document == listed_findings:
        found.append(
            f"findings: row {row.findings_count}, finding rows {finding_rows}, "
            f"document summary {in_document}, document list {listed_findings}"
        )
    return found


def differences(rows: Rows, folders: dict[str, list[Path]], results_dir: Path) -> dict[str, list[str]]:
    """Each task whose rows and folder disagree, with what differs."""
    found: dict[str, list[str]] = {}
    for task_id, row in rows.tasks.items():
        if row.terminal:
            assert row.result_dir is not None
            problems = _folder_differences(
                results_dir / row.result_dir, row, rows.finding_rows.get(task_id, 0)
            )
        else:
            problems = ["a result folder, but the row is not finished"] if task_id in folders else []
        if problems:
            found[task_id] = problems
    for task_id in folders.keys() - rows.tasks.keys():
        found[task_id] = ["a result folder without a task row"]
    return found
