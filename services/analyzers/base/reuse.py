"""Content-addressed reuse of tool runs: a run whose every input is unchanged hands back the stored output.

A key is the SHA-256 of everything a tool's output depends on (its name and version, its argument list and the
files that list names, Assay's own parser, the content of every file it reads); the tools build theirs
(services/analyzers/static/tools/run_inputs.py). An entry is one file `<folder>/<key[:2]>/<key>`, written under a
temporary name in the same folder and renamed into place, so that analyzer replicas sharing the folder never read
half an entry; two replicas storing the same key store the same output and the last rename wins. An entry that
cannot be read or decoded is a miss, never an error. Reading an entry touches its modification time, so pruning
removes the least recently used first; the store prunes itself back under its bound as it grows.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import msgspec

from shared.results.findings import Finding
from shared.store.atomic_file import PART_SUFFIX, write_atomically

STALE_PART_S = 3600.0  # an entry still being written after this long was left by a crash
PRUNE_EVERY = 10  # the store prunes itself after writing a tenth of its bound


class StoredRun(msgspec.Struct, frozen=True, kw_only=True):
    """What a tool run produced, kept for a later run with the same inputs."""

    task_id: str  # the task that ran it
    command: list[str]
    exit_code: int | None
    duration_s: float
    findings: list[Finding]
    raw_output: str = ""
    status: str = "success"  # or `skipped`: an advisory database that could not say, within its reuse window
    reason: str | None = None


class PruneTally(msgspec.Struct, frozen=True, kw_only=True):
    removed: int
    freed_bytes: int
    kept: int
    kept_bytes: int


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(StoredRun)


def digest(*parts: str) -> str:
    """SHA-256 of `parts`, each length-prefixed so that no two different lists hash alike."""
    hashed = hashlib.sha256()
    for part in parts:
        data = part.encode()
        hashed.update(len(data).to_bytes(8, "big"))
        hashed.update(data)
    return hashed.hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes; `missing` when it cannot be read (a later run that can read it differs)."""
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return "missing"


class ReuseStore:
    """Stored tool runs under `folder`, at most about `max_bytes` of them (0: the store is off)."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._written = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / key

    def get(self, key: str) -> StoredRun | None:
        """The run stored under `key`, or None (never stored, pruned, or unreadable)."""
        path = self._path(key)
        try:
            stored = _decoder.decode(path.read_bytes())
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            return None
        try:
            os.utime(path)  # recently used: pruned last
        except OSError:
            pass
        return stored

    def put(self, key: str, run: StoredRun) -> None:
        """Store `run` under `key` atomically (temporary file, then rename); prune when the store has grown."""
        path = self._path(key)
        data = _encoder.encode(run)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)
        self._written += len(data)
        if self._written * PRUNE_EVERY > self.max_bytes:
            self._written = 0
            self.prune()

    def prune(
        self, max_bytes: int | None = None, older_than_s: float | None = None, *, dry_run: bool = False
    ) -> PruneTally:
        """Remove entries unused for `older_than_s` (when given), then the least recently used until the rest fit
        in `max_bytes` (default: the store's bound); also the leftovers of writes a crash interrupted. With
        `dry_run` the tally says what would go and nothing is removed."""
        bound = self.max_bytes if max_bytes is None else max_bytes

        def remove(path: Path) -> None:
            if not dry_run:
                path.unlink(missing_ok=True)

        now = time.time()
        entries: list[tuple[float, int, Path]] = []
        removed = freed = 0
        for path in self.folder.glob("*/*"):
            try:
                status = path.stat()
            except OSError:  # removed meanwhile by another replica's prune
                continue
            stale_part = path.name.endswith(PART_SUFFIX) and now - status.st_mtime > STALE_PART_S
            too_old = older_than_s is not None and now - status.st_mtime > older_than_s
            if stale_part or (too_old and not path.name.endswith(PART_SUFFIX)):
                removed, freed = removed + 1, freed + status.st_size
                remove(path)
            elif not path.name.endswith(PART_SUFFIX):
                entries.append((status.st_mtime, status.st_size, path))
        entries.sort()
        total = sum(size for _mtime, size, _path in entries)
        kept = len(entries)
        for _mtime, size, path in entries:
            if total <= bound:
                break
            remove(path)
            total, kept, removed, freed = total - size, kept - 1, removed + 1, freed + size
        return PruneTally(removed=removed, freed_bytes=freed, kept=kept, kept_bytes=total)
