"""The file side: a task's result folder appears all at once or not at all.

Every file is written into a temporary sibling folder (`.tmp-…`), each file and folder is fsynced, and only then is
the folder renamed to its final name. A reader therefore sees a complete result or none. This module knows bytes
and paths, not what the files mean.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from pathlib import Path, PurePosixPath

TEMPORARY_PREFIX = ".tmp-"


def _fsync_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _checked_relative(name: str) -> PurePosixPath:
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ValueError(f"file name {name!r} would leave the result folder")
    return relative


def _remove_leftovers(final: Path) -> None:
    """Temporary folders of an earlier attempt that crashed before its rename."""
    for leftover in final.parent.glob(f"{TEMPORARY_PREFIX}{final.name}-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _write(final: Path, files: dict[str, bytes]) -> bool:
    if final.exists():
        return False
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(final)
    temporary = final.with_name(f"{TEMPORARY_PREFIX}{final.name}-{secrets.token_hex(4)}")
    temporary.mkdir()
    try:
        folders = {temporary}
        for name, data in files.items():
            path = temporary.joinpath(*_checked_relative(name).parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            folders.add(path.parent)
            with path.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        # Deepest first, so that each folder's entries are durable before the folder above names it.
        for folder in sorted(folders, key=lambda item: len(item.parts), reverse=True):
            _fsync_folder(folder)
        try:
            os.rename(temporary, final)
        except OSError:
            if final.exists():  # another writer got there first: its folder is as complete as ours
                shutil.rmtree(temporary, ignore_errors=True)
                return False
            raise
        _fsync_folder(final.parent)
        return True
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


async def write_folder(final: Path, files: dict[str, bytes]) -> bool:
    """Write `files` (relative name → bytes) as the folder `final`, atomically.

    Returns False, writing nothing, when `final` already exists (a retry after a crash between the rename and the
    database update keeps the folder it finds). All file I/O runs in a worker thread.
    """
    return await asyncio.to_thread(_write, final, files)
