"""A migrated SQLite database made once per test process (so once per xdist worker) and copied for each test that
wants a migrated database of its own: a copy of a file, instead of every migration run again per test.

Only SQLite files that do not exist yet are copied; any other URL (PostgreSQL, a file a test prepared) is migrated
as before. The copy is at the newest migration, so migrating it again finds nothing to do.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from pathlib import Path

from shared.store.database import create_engine, migrate

SQLITE = "sqlite+aiosqlite:///"
_template: Path | None = None  # this process's migrated file, made on first use


async def _make_template() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="assay-template-db-"))
    atexit.register(shutil.rmtree, folder, True)  # the process's own: gone when it ends
    path = folder / "template.db"
    engine = create_engine(f"{SQLITE}{path}")
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    return path


def _is_new_file(target: Path) -> bool:
    return not target.exists() and target.parent.is_dir()


async def copy_migrated(database_url: str) -> bool:
    """Make `database_url` a copy of the migrated template when it names a SQLite file not yet there; whether it
    did (False: the caller migrates as before)."""
    global _template
    if not database_url.startswith(SQLITE):
        return False
    target = Path(database_url.removeprefix(SQLITE))
    if not await asyncio.to_thread(_is_new_file, target):
        return False
    if _template is None:
        _template = await _make_template()
    await asyncio.to_thread(shutil.copyfile, _template, target)
    return True


async def migrated(database_url: str) -> str:
    """`database_url` at the newest migration: a copy of the template where it can be, else migrated."""
    if not await copy_migrated(database_url):
        engine = create_engine(database_url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()
    return database_url
