"""A file the client names under a root folder of the gateway (an app's folder, a task's result folder)."""

from __future__ import annotations

from pathlib import Path

from litestar.exceptions import NotFoundException

from services.gateway.errors import invalid
from shared.store.paths import UnsafePathError, inside


def file_inside(root: Path, relative: str, field: str, source: str) -> Path:
    """The regular file `relative` under `root` (blocking: run in a thread). A 422 naming `field` (a parameter of
    `source`: query, path) when it would leave the root, symlinks included; a 404 when there is no such file (or
    none could have that name)."""
    try:
        file = inside(root, relative)
        regular = file.is_file()
    except UnsafePathError as error:
        raise invalid(field, f"{relative!r} is outside the folder it must stay in", source) from error
    except OSError as error:  # e.g. a name longer than the file system allows: no such file can exist
        raise NotFoundException(f"no file {relative!r} there ({error.strerror})") from error
    if not regular:
        raise NotFoundException(f"no file {relative!r} there")
    return file
