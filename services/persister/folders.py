"""The file side: a task's result folder appears all at once or not at all.

Every file is written into a temporary folder beside the final one (`.tmp-<name>/<random>/`), each file and folder
is fsynced, and only then is the folder renamed to its final name. A reader therefore sees a complete result or
none. What a crash before the rename leaves is all under `.tmp-<name>/`, removed by one call, so a write never lists
its parent folder (which holds every result of the app: listing it would grow with every task). This module knows
bytes and paths, not what the files mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from pathlib import Path, PurePosixPath

from shared.store.paths import UnsafePathError

TEMPORARY_PREFIX = ".tmp-"


def fsync_folder(folder: Path) -> None:
    """Make the entries of `folder` (a rename into it, a new file) durable."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _checked_relative(name: str) -> PurePosixPath:
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise UnsafePathError(f"file name {name!r} would leave the result folder")
    return relative


def _scratch(final: Path) -> Path:
    """Where the temporary folders of `final` are made (and left by a crash before the rename)."""
    return final.with_name(f"{TEMPORARY_PREFIX}{final.name}")


def _write(final: Path, files: dict[str, bytes]) -> bool:
    scratch = _scratch(final)
    if final.exists():
        shutil.rmtree(
            scratch, ignore_errors=True
        )  # a crash may have come between the rename and this removal
        return False
    scratch.mkdir(parents=True, exist_ok=True)
    temporary = scratch / secrets.token_hex(4)
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
            fsync_folder(folder)
        try:
            os.rename(temporary, final)
        except OSError:
            if final.exists():  # another writer got there first: its folder is as complete as ours
                shutil.rmtree(temporary, ignore_errors=True)
                return False
            raise
        fsync_folder(final.parent)
        shutil.rmtree(scratch, ignore_errors=True)  # with anything an earlier, crashed attempt left in it
        return True
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        with contextlib.suppress(OSError):
            scratch.rmdir()  # only when empty: another writer of the same folder may be using it
        raise


async def write_folder(final: Path, files: dict[str, bytes]) -> bool:
    """Write `files` (relative name → bytes) as the folder `final`, atomically.

    Returns False, writing nothing, when `final` already exists (a retry after a crash between the rename and the
    database update keeps the folder it finds). All file I/O runs in a worker thread.
    """
    return await asyncio.to_thread(_write, final, files)
