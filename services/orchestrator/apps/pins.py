"""Relaxing an app's pinned requirements when they cannot install for the chosen Python: the requirement pip named
as failing loses its version constraint (`gevent==1.2.2` → `gevent`), one at a time, and when pip names none that
is pinned, every pin goes at once. What was relaxed is recorded exactly (line → line), so the result can say that
the app ran with other versions than it asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from services.orchestrator.apps.prepare_log import failing_requirement

MAX_ROUNDS = 4  # pip names one failing requirement per attempt; an app with more gets every pin relaxed
_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]*\])?\s*(?P<spec>[<>=!~][^;#]*)?(?P<rest>[;#].*)?$"
)


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def name_of(requirement: str) -> str | None:
    """The distribution name of a requirement as pip prints it (`gevent==1.2.2`, `aiohttp<4`), or None."""
    found = _REQUIREMENT.match(requirement.strip())
    return canonical(found.group("name")) if found else None


def relax(text: str, only: str | None = None) -> tuple[str, dict[str, str]]:
    """`text` (a requirements file) with the version constraint of `only` removed, or of every requirement when
    `only` is None; and what changed, original line → relaxed line (empty when nothing could be relaxed)."""
    lines: list[str] = []
    changed: dict[str, str] = {}
    for line in text.splitlines():
        found = _REQUIREMENT.match(line.strip())
        if found and found.group("spec") and (only is None or canonical(found.group("name")) == only):
            marker = (found.group("rest") or "").strip()
            relaxed = f"{found.group('name')}{found.group('extras') or ''}" + (
                f" {marker}" if marker.startswith(";") else ""
            )
            changed[line.strip()] = relaxed
            line = relaxed
        lines.append(line)
    return "\n".join(lines) + "\n", changed


RELAXED_FILE = "requirements.relaxed.txt"  # in the virtualenv's folder, beside what it was installed from


async def install_relaxed(
    original: str,
    folder: Path,
    inside: str,
    install: Callable[[str], Awaitable[bool]],
    log: list[str],
) -> dict[str, str] | None:
    """After `original` failed to install: relax the failing pin (else every pin) and `install` again, up to
    MAX_ROUNDS times. What was relaxed (line → line) once an attempt succeeds, None when none does.

    `folder` is the virtualenv's folder on the host, seen as `inside` by `install`; the relaxed file is kept there."""
    text = original
    relaxed: dict[str, str] = {}
    for _ in range(MAX_ROUNDS):
        failing = name_of(failing_requirement(log[-1] if log else "") or "")
        attempt, changed = relax(text, failing) if failing else (text, {})
        if not changed:
            attempt, changed = relax(text, None)
        if not changed:
            return None
        text = attempt
        relaxed.update(changed)
        await asyncio.to_thread(_write_readable, folder, RELAXED_FILE, text)
        described = ", ".join(f"{old} → {new}" for old, new in changed.items())
        log.append(f"[relaxing pins that cannot install: {described}]\n")
        if await install(f"{inside}/{RELAXED_FILE}"):
            return relaxed
    return None


def _write_readable(folder: Path, name: str, text: str) -> None:
    """`folder/name` made afresh, readable by the sandbox user whatever Assay's umask (pip reads it inside the
    sandbox). The folder is one a build sandbox wrote: a link it left there is removed, never followed."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=fd)
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd)
        os.fchmod(out, 0o644)  # past the umask
        with os.fdopen(out, "w") as file:
            file.write(text)
    finally:
        os.close(fd)
