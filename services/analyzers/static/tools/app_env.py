"""The app's Python environment as pylint and mypy see it: the site-packages folder of the virtualenv the
orchestrator prepared, found by name under this analyzer's own ASSAY_APP_WORK_DIR and checked before any tool reads
it.

The virtualenv was built by untrusted code (pip runs the app's build backends in the preparation sandbox). It is
never written again once ready (the sandbox's processes are gone; an app's run binds it read-only), so one check
holds for every later read: its site-packages tree, walked with lstat, holds only folders and regular files (no
symbolic link, FIFO, device or socket), at most MAX_FILES of them, none larger than MAX_FILE_BYTES. Nothing of it is
ever run here: not its interpreter, not its `.pth` files (a `.pth` line can execute code); the folder is handed to
the tools as a search path only (pylint: import_guard.py; mypy: a search-folders answer of Assay's own).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from shared.operations.config import Settings
from shared.store.paths import prepared_cache
from shared.wire.protocol import PythonEnvironment

# The names prepare.py gives virtualenvs: venv-<requirements hash>-<python hash>[-<source hash>]
VENV_NAME = re.compile(r"venv-[0-9a-f]{24}-[0-9a-f]{8}(?:-[0-9a-f]{12})?")
MAX_FILES = 200_000
MAX_FILE_BYTES = 512 * 1024 * 1024
_verified: dict[tuple[str, int, int], str] = {}  # (site-packages, inode, ctime) → identity
_verifying = threading.Lock()


class EnvironmentRefused(ValueError):
    """The prepared virtualenv is not one the tools may read; the message says why."""


@dataclass(frozen=True)
class ToolEnvironment:
    """What one pylint or mypy run resolves the app's imports with."""

    site_packages: Path | None  # None: only what the analyzer itself has installed
    name: str | None  # the virtualenv's name in the cache
    identity: (
        str  # a reuse input: the virtualenv's name and the listing of its site-packages ("" without one)
    )
    note: str  # said in the run's metrics and its unresolved-imports note


def _folder(path: Path) -> os.stat_result:
    """lstat of `path`, which must be a folder of its own (no link)."""
    try:
        status = os.lstat(path)
    except OSError as error:
        raise EnvironmentRefused(f"{path.name} cannot be read: {error.strerror}") from error
    if not stat.S_ISDIR(status.st_mode):
        raise EnvironmentRefused(f"{path.name} is not a folder (a link or another kind of file)")
    return status


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISBLK(mode) or stat.S_ISCHR(mode) else "not a regular file"


def tree_identity(site_packages: Path) -> str:
    """Hash of every entry's relative path, size and modification time, walked with lstat; EnvironmentRefused at the
    first entry that is not a folder or a regular file, or past the bounds."""
    digest = hashlib.sha256()
    count = 0
    pending = [site_packages]
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda item: item.name):
                status = entry.stat(follow_symlinks=False)
                relative = Path(entry.path).relative_to(site_packages).as_posix()
                count += 1
                if count > MAX_FILES:
                    raise EnvironmentRefused(f"site-packages holds more than {MAX_FILES} entries")
                if stat.S_ISDIR(status.st_mode):
                    pending.append(Path(entry.path))
                elif not stat.S_ISREG(status.st_mode):
                    raise EnvironmentRefused(f"site-packages/{relative} is {_kind(status.st_mode)}")
                elif status.st_size > MAX_FILE_BYTES:
                    raise EnvironmentRefused(
                        f"site-packages/{relative} is larger than {MAX_FILE_BYTES} bytes"
                    )
                digest.update(f"{relative}\0{status.st_size}\0{status.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def site_packages(root: Path, name: str) -> tuple[Path, str]:
    """The checked site-packages folder of the virtualenv `name` under `root`, and its identity; EnvironmentRefused
    with the reason otherwise. A name that is not a virtualenv's never becomes a path."""
    if not VENV_NAME.fullmatch(name):
        raise EnvironmentRefused(f"{name[:80]!r} is not the name of a prepared virtualenv")
    venv = root / name  # one path component of hex digits and '-': it cannot leave `root`
    _folder(venv)
    _folder(venv / "lib")
    with os.scandir(venv / "lib") as entries:
        versions = [entry.name for entry in entries if entry.name.startswith("python")]
    if len(versions) != 1:
        raise EnvironmentRefused(f"{name}/lib holds {len(versions)} python folders, not one")
    _folder(venv / "lib" / versions[0])
    found = venv / "lib" / versions[0] / "site-packages"
    status = _folder(found)
    key = (str(found), status.st_ino, status.st_ctime_ns)
    with _verifying:  # pylint's and mypy's runs of one analysis ask at once: walked once
        if key not in _verified:
            _verified[key] = tree_identity(found)
        return found, _verified[key]


def resolve(settings: Settings, sent: PythonEnvironment | None) -> ToolEnvironment | None:
    """The environment a run of pylint or mypy uses: the checked virtualenv the orchestrator named, or none with
    the reason; None when the orchestrator said nothing (no requirements file, no app runner): the tools run as
    they always did."""
    if sent is None:
        return None
    if sent.venv is None:
        return ToolEnvironment(
            None, None, "", f"without the app's dependencies: {sent.reason or 'not prepared'}"
        )
    try:
        found, listing = site_packages(prepared_cache(settings.app_work_dir), sent.venv)
    except (EnvironmentRefused, OSError) as error:
        reason = f"{sent.venv} refused: {error}"
        return ToolEnvironment(None, None, "", f"without the app's dependencies: {reason}")
    identity = hashlib.sha256(f"{sent.venv}\0{listing}".encode()).hexdigest()
    return ToolEnvironment(
        found, sent.venv, identity, f"with the app's dependencies (virtualenv {sent.venv})"
    )
