"""The disk quota of a folder a sandbox writes on the host: the preparation's build folder (a virtualenv, a
frontend's node_modules) must outlive its sandbox, so it cannot live on the sandbox's sized tmpfs; it is measured
while the step runs instead, and the step is stopped once the folder passes the quota.

The walk goes through directory descriptors and never follows a link (`os.fwalk`), so a folder the sandbox swaps
for a link while it is measured leads nowhere else; only sizes are read.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

POLL_S = 1.0


def allocated_bytes(folder: Path, limit: int) -> int:
    """Bytes allocated under `folder` (each name counted, links not followed); the walk stops once past `limit`."""
    total = 0
    for _, dirs, files, dir_fd in os.fwalk(folder, follow_symlinks=False):
        for name in (*dirs, *files):
            try:
                total += os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_blocks * 512
            except OSError:
                continue  # gone meanwhile
        if total > limit:
            break
    return total


async def first_over(folders: list[Path], limit: int) -> Path:
    """The first of `folders` found past `limit` bytes, checked every POLL_S; never returns while all stay under."""
    while True:
        for folder in folders:
            try:
                size = await asyncio.to_thread(allocated_bytes, folder, limit)
            except OSError:
                continue  # not there (yet): nothing to count
            if size > limit:
                return folder
        await asyncio.sleep(POLL_S)
