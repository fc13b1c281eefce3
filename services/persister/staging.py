"""Staging: each service's full result, kept on disk between its `service` event and the task's terminal event.

The database holds the rows a query needs; the result folder also needs what the rows leave out (SARIF, raw
outputs). Keeping that in memory would lose it on a restart, so each service's outcome is written to
`<results_dir>/.staging/<task_id>/<service>.json` (atomically) and read back when the task ends.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import msgspec

from services.persister.folders import fsync_folder
from shared.paths import inside
from shared.protocol import ServiceResult

STAGING_FOLDER = ".staging"
SERVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class StagedService(msgspec.Struct, kw_only=True):
    """One service's outcome as the task's result folder will show it."""

    service: str
    status: str
    error: str | None = None
    event_id: str
    result: ServiceResult | None = None  # None when the service failed without producing anything


def check_service_name(service: str) -> str:
    """A service name that is safe as a file name; anything else is refused."""
    if not SERVICE_NAME_RE.match(service):
        raise ValueError(
            f"service name {service!r} is not allowed: use 1-32 lowercase letters, digits, '_' or '-'"
        )
    return service


def task_folder(results_root: Path, task_id: str) -> Path:
    """`<results_root>/.staging/<task_id>` (the task id is validated by the message that named it)."""
    return inside(results_root, STAGING_FOLDER, task_id)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)  # a full disk leaves no half file behind
        raise
    fsync_folder(path.parent)  # the rename itself is only durable once the folder is synced


async def stage(results_root: Path, task_id: str, staged: StagedService) -> None:
    """Keep `staged` until the task ends; a second call for the same service replaces the first."""
    name = f"{check_service_name(staged.service)}.json"
    data = msgspec.json.encode(staged)
    # Resolving the folder stats every part of the path: off the event loop too.
    await asyncio.to_thread(lambda: _write_atomically(task_folder(results_root, task_id) / name, data))


def _read_all(folder: Path) -> dict[str, StagedService]:
    if not folder.is_dir():
        return {}
    decoder = msgspec.json.Decoder(StagedService)
    found: dict[str, StagedService] = {}
    for path in sorted(folder.glob("*.json")):
        staged = decoder.decode(path.read_bytes())
        found[staged.service] = staged
    return found


async def staged_services(results_root: Path, task_id: str) -> dict[str, StagedService]:
    """Every service staged for the task so far, by service name."""
    return await asyncio.to_thread(lambda: _read_all(task_folder(results_root, task_id)))


async def discard(results_root: Path, task_id: str) -> None:
    """Remove the task's staging folder (its content now lives in the result folder)."""
    await asyncio.to_thread(lambda: shutil.rmtree(task_folder(results_root, task_id), True))
