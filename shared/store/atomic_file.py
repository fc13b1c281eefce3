"""A file written whole or not at all: its bytes go to a temporary file of its own in the same folder, which is then
renamed over it, so a reader (another thread, process or replica sharing the folder) never sees half of it; and the
private files (passwords, tokens) written so, readable by their owner only."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PART_SUFFIX = ".part"  # a file being written (one left by a crash keeps it: folders pruned by age can tell)


def write_atomically(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace `path` with `data` (and `mode`, when given); the temporary file is removed if anything fails."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PART_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read: its temporary file is created 0600, so it is never readable
    by others in between, and a reader (a service reading the supervisor's credentials) never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text.encode(), mode=0o600)
