"""Failed preparations, remembered for a while beside the cache they did not reach.

A study often holds many tasks of one app (its `static` and `comprehensive` tasks, a re-run): when its requirements
cannot install, each of them would pay pip's whole failure again (minutes where a step times out). The build that
failed leaves a record under the cache's key (`<key>.failed.json`: its reason, its log, when); a later build of the
same key within ASSAY_APP_PREPARE_FAILURE_MEMORY_S fails at once with that reason and log, marked as remembered. A
changed requirements file is another key; a task with `fresh` set builds again; a build that succeeds removes the
record. Only Assay writes the cache folder, so the record is never an app's.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import msgspec


class FailedBuild(msgspec.Struct, frozen=True):
    reason: str  # the AppNotStarted message of the build that failed
    log: list[str]  # its log entries (the steps' commands and output)
    at: float  # when it failed, seconds since the epoch


def _record(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"{key}.failed.json"


def recall(cache_dir: Path, key: str, within_s: float) -> FailedBuild | None:
    """The failure of the build `key` if one was recorded less than `within_s` seconds ago (an unreadable record
    is none: the build runs again)."""
    if within_s <= 0:
        return None
    try:
        failed = msgspec.json.decode(_record(cache_dir, key).read_bytes(), type=FailedBuild)
    except (OSError, msgspec.ValidationError, msgspec.DecodeError):
        return None
    return failed if 0 <= time.time() - failed.at < within_s else None


def remember(cache_dir: Path, key: str, reason: str, log: list[str]) -> None:
    """Record that the build `key` failed (written whole, then renamed: a reader never sees half of it)."""
    final = _record(cache_dir, key)
    partial = final.with_suffix(".tmp")
    partial.write_bytes(msgspec.json.encode(FailedBuild(reason=reason, log=log, at=time.time())))
    partial.replace(final)


def forget(cache_dir: Path, key: str) -> None:
    """The build `key` succeeded: its earlier failure no longer holds."""
    with contextlib.suppress(FileNotFoundError):
        _record(cache_dir, key).unlink()


def remembered_reason(failed: FailedBuild, within_s: float) -> str:
    """The reason a task is given when a remembered failure stands in for its build."""
    ago = max(0.0, time.time() - failed.at)
    return (
        f"{failed.reason} (remembered: the same requirements failed {ago:.0f} s ago; not tried again for "
        f"{within_s:g} s, ASSAY_APP_PREPARE_FAILURE_MEMORY_S; a changed requirements file or a fresh task tries again)"
    )
