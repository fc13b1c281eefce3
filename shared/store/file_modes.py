"""Files at rest are Assay's own: the database (and its WAL and shared-memory files), the span files, the result
folders and everything under the var folder are created readable by the user running Assay only (files 0600,
folders 0700), unless ASSAY_UMASK shares them with the group (`027`: group may read). Others never get access.

Every entry point (each service, the CLI) calls `keep_files_private` first: it sets the process's umask, which
every file and folder it creates then honours (SQLite gives its WAL and SHM files the database's mode; tools and
app processes inherit it), and takes away from the folders that hold those files (and, in the processes that open
it, the SQLite database file itself) whatever an older release left open: a folder others cannot enter hides
everything in it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from shared.operations.config import Settings

log = logging.getLogger(__name__)


def keep_files_private(settings: Settings, *, database: bool) -> None:
    """Set the umask for every file this process creates; narrow the folders it writes to, and the SQLite database
    when it opens one (`database`). The folders on the way to the apps' work folder keep their search bit
    (`open_way_to_apps`)."""
    os.umask(settings.umask)
    folder_mode = 0o777 & ~settings.umask
    file_mode = 0o666 & ~settings.umask
    passage = on_the_way(settings.var_dir, settings.app_work_dir)
    for folder in (settings.var_dir, settings.results_dir, settings.trace_dir):
        _narrow(folder, folder_mode | (SEARCH if folder.absolute() in passage else 0))
    sqlite = sqlite_file(settings.database_url) if database else None
    if sqlite is not None:
        for path in (sqlite, Path(f"{sqlite}-wal"), Path(f"{sqlite}-shm")):
            _narrow(path, file_mode)


SEARCH = 0o011  # group and others may pass through a folder (to a name they know), not list it
READ_AND_SEARCH = 0o055


def on_the_way(root: Path, inner: Path) -> list[Path]:
    """`root` and the folders below it down to `inner`'s parent, when `inner` is inside `root`; else none."""
    root, inner = root.absolute(), inner.absolute()
    if root not in inner.parents:
        return []
    return [root, *(folder for folder in reversed(inner.parents) if root in folder.parents)]


def open_way_to_apps(settings: Settings) -> None:
    """The one exception, for a process that runs apps, as root (the app runner calls it before each app, whoever
    its caller: the orchestrator, `assay replay`): it runs them as another user (the sandbox user of
    services/orchestrator/apps/sandbox.py), who must read what it is given (the app's copy, the run's start script)
    and pass through the folders above it. So this process's umask lets others read and search (`022` of the
    default `077`: never write), and the folders above the apps' work folder (ASSAY_APP_WORK_DIR, by default
    `var/apps`) inside the var folder keep others' search bit (`x`, never `r`: they cannot be listed). What it
    writes elsewhere stays private through its folder: the trace, results and var folders are narrowed at every
    start (`keep_files_private`), and a folder others cannot enter hides every file in it."""
    if os.geteuid() != 0:
        return  # the apps run as this user: nothing to open
    os.umask(settings.umask & ~READ_AND_SEARCH)
    for folder in on_the_way(settings.var_dir, settings.app_work_dir):
        folder.mkdir(exist_ok=True)
        folder.chmod((folder.stat().st_mode & 0o777 & ~settings.umask) | SEARCH)


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite database URL (None for another database or an in-memory one)."""
    # Here, not at the top: SQLAlchemy is a tenth of a second of every start, and only what opens a database needs it.
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if not url.get_backend_name().startswith("sqlite") or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def _narrow(path: Path, mode: int) -> None:
    """Take from `path` every permission `mode` does not give (never add any); quiet when it does not exist."""
    try:
        current = path.stat().st_mode & 0o777
        if current & ~mode:
            path.chmod(current & mode)
    except FileNotFoundError:
        return
    except PermissionError as error:  # someone else's folder (a shared mount): theirs to set
        log.warning("cannot narrow the permissions of %s: %s", path, error)
