"""The versions of tool executables, remembered across analyzer starts in `<ASSAY_TOOL_CACHE_DIR>/versions.json`.

An analyzer asks each of its tools its version before it listens (`--version`: a process each; semgrep's takes a
CPU-second). An executable unchanged since it was asked (the same file: inode, size and modification time) is not
asked again, so a restarted analyzer (a rolling restart, a crash, `assay up` again) answers health at once; an
upgraded or replaced executable is another file and is asked. The file is a cache: unreadable or stale, the tool is
asked; it is written whole (a temporary file renamed over it), so analyzers sharing the folder never read half of it,
and when two write at once one's entry may be lost, to be asked again.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from shared.store.atomic_file import write_atomically

FILE = "versions.json"


class Remembered(msgspec.Struct):
    identity: str  # the executable file's inode, size and modification time when it was asked
    version: str | None  # what its answer said (None: it named no version)


def identity(program: str) -> str | None:
    """The identity of the file `program` runs (links followed), or None when it cannot be read."""
    try:
        found = os.stat(program)
    except OSError:
        return None
    return f"{found.st_ino}:{found.st_size}:{found.st_mtime_ns}"


def _read(path: Path) -> dict[str, Remembered]:
    try:
        return msgspec.json.decode(path.read_bytes(), type=dict[str, Remembered])
    except (OSError, msgspec.DecodeError):
        return {}


def recall(folder: Path, program: str) -> Remembered | None:
    """What `program` answered when it was last asked, if it is still the same file."""
    known = _read(folder / FILE).get(program)
    return known if known is not None and known.identity == identity(program) else None


def remember(folder: Path, program: str, version: str | None) -> None:
    """Keep `program`'s answer with its file's identity (nothing when the folder cannot be written)."""
    now = identity(program)
    if now is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        known = _read(folder / FILE)
        known[program] = Remembered(identity=now, version=version)
        write_atomically(folder / FILE, msgspec.json.encode(known))
    except OSError:
        return
