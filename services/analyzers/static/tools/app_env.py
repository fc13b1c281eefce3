"""The app's Python environment as pylint and mypy see it: the site-packages folder of the virtualenv the
orchestrator prepared, found by name under this analyzer's own ASSAY_APP_WORK_DIR and checked before any tool reads
it.

The virtualenv was built by untrusted code (pip runs the app's build backends in the preparation sandbox). It is
never written again once ready: the preparation makes the ready tree the orchestrator's (root's) and writable by
no one else before it renames it into the cache (prepare.py), the sandbox's processes are gone, and an app's run
binds it read-only. So one check holds for every later read: its site-packages tree, walked with lstat, holds only
folders and regular files (no symbolic link, FIFO, device or socket), each owned by root or this analyzer's user
and writable by neither group nor others, at most MAX_FILES of them, no module (.py, .pyi) larger than
MAX_MODULE_BYTES, no file larger than MAX_FILE_BYTES, at most MAX_MODULE_TOTAL_BYTES of modules in all (what the
tools parse; their memory is bounded too: ASSAY_TOOL_MEMORY_MB). Nothing of it is
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
MAX_FILE_BYTES = 512 * 1024 * 1024  # a wheel's data or shared library: listed, never parsed
# pylint's astroid needs some 300 times a module's size to build it (a 2 MB module: 600 MB); the largest modules of
# real packages are well under 1 MB (generated protobuf, unicode tables).
MAX_MODULE_BYTES = 4 * 1024 * 1024
MAX_MODULE_TOTAL_BYTES = 1024 * 1024 * 1024  # all the modules together (torch's are some 100 MB)
MODULE_SUFFIXES = (".py", ".pyi")
OWNERS = frozenset(
    {0, os.getuid()}
)  # who may own what the tools read: root (the preparation), or this analyzer
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

    def left_out(self, reason: str) -> ToolEnvironment:
        """The same run's environment when the tool had to run again without the app's dependencies."""
        return ToolEnvironment(None, self.name, self.identity, f"without the app's dependencies: {reason}")


def _folder(path: Path) -> os.stat_result:
    """lstat of `path`, which must be a folder of its own (no link) that no one else can write."""
    try:
        status = os.lstat(path)
    except OSError as error:
        raise EnvironmentRefused(f"{path.name} cannot be read: {error.strerror}") from error
    if not stat.S_ISDIR(status.st_mode):
        raise EnvironmentRefused(f"{path.name} is not a folder (a link or another kind of file)")
    check_owner(status, path.name)
    return status


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISBLK(mode) or stat.S_ISCHR(mode) else "not a regular file"


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """A folder's entries in name order; counted while listed, so a folder past MAX_FILES is refused before it is
    all in memory."""
    found: list[os.DirEntry[str]] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            found.append(entry)
            if len(found) > MAX_FILES:
                raise EnvironmentRefused(f"site-packages holds more than {MAX_FILES} entries")
    return sorted(found, key=lambda item: item.name)


def check_owner(status: os.stat_result, shown: str) -> None:
    """EnvironmentRefused unless the entry is root's or this analyzer's and writable by no one else: then nothing
    the app's sandbox runs can change it after this check."""
    if status.st_uid not in OWNERS:
        raise EnvironmentRefused(f"{shown} is owned by uid {status.st_uid}, not by root or the analyzer")
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise EnvironmentRefused(f"{shown} is writable by its group or by others")


def tree_identity(site_packages: Path) -> str:
    """Hash of every entry's relative path, size and modification time, walked with lstat; EnvironmentRefused at the
    first entry that is not a folder or a regular file, that others could write, or past the bounds."""
    digest = hashlib.sha256()
    count = 0
    module_bytes = 0
    pending = [site_packages]
    while pending:
        folder = pending.pop()
        for entry in _entries(folder):
            status = entry.stat(follow_symlinks=False)
            relative = Path(entry.path).relative_to(site_packages).as_posix()
            shown = f"site-packages/{relative}"
            count += 1
            if count > MAX_FILES:
                raise EnvironmentRefused(f"site-packages holds more than {MAX_FILES} entries")
            if stat.S_ISDIR(status.st_mode):
                pending.append(Path(entry.path))
            elif not stat.S_ISREG(status.st_mode):
                raise EnvironmentRefused(f"{shown} is {_kind(status.st_mode)}")
            elif status.st_size > MAX_FILE_BYTES:
                raise EnvironmentRefused(f"{shown} is larger than {MAX_FILE_BYTES} bytes")
            elif entry.name.endswith(MODULE_SUFFIXES):
                if status.st_size > MAX_MODULE_BYTES:
                    raise EnvironmentRefused(f"{shown} is a module larger than {MAX_MODULE_BYTES} bytes")
                module_bytes += status.st_size
                if module_bytes > MAX_MODULE_TOTAL_BYTES:
                    raise EnvironmentRefused(f"its modules hold more than {MAX_MODULE_TOTAL_BYTES} bytes")
            check_owner(status, shown)
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
        reason = f"{sent.venv[:80]} refused: {error}"
        return ToolEnvironment(None, None, "", f"without the app's dependencies: {reason}")
    identity = hashlib.sha256(f"{sent.venv}\0{listing}".encode()).hexdigest()
    return ToolEnvironment(
        found, sent.venv, identity, f"with the app's dependencies (virtualenv {sent.venv})"
    )
