"""The app's source files a model gets to read, shared out fairly within a character budget.

What is sent: backend and frontend code, markup, styles and dependency manifests. What never is: `.env` files,
keys and certificates (the prompt goes to a third party), lock files, vendored or built folders, files over
MAX_FILE_BYTES (minified bundles) and anything that is not UTF-8 text. Symbolic links are not followed, so an
app cannot make us send a file from outside its folder.

Budget: `DEFAULT_BUDGET_CHARS` characters of file text in total (about 15k tokens; requests may set
`options.<tool>.max_prompt_chars`). When the files do not fit, each gets an equal share, and what a small file
does not use is shared among the larger ones; a file cut short keeps its beginning and is marked truncated.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import msgspec

from shared.wire.options import DEFAULT_BUDGET_CHARS

MAX_FILE_BYTES = 512 * 1024
MAX_FILES = 300  # a generated app has a handful; a bigger tree is not what we were asked to review

SOURCE_SUFFIXES = frozenset(
    {
        ".py",
        ".js",
        ".mjs",
        ".cjs",
        ".jsx",
        ".ts",
        ".tsx",
        ".vue",
        ".svelte",
        ".html",
        ".htm",
        ".css",
        ".scss",
        ".sql",
        ".toml",
        ".cfg",
        ".ini",
        ".yaml",
        ".yml",
    }
)
MANIFESTS = frozenset({"requirements.txt", "package.json", "pyproject.toml", "Pipfile", "Dockerfile"})
SKIPPED_DIRS = frozenset(
    {
        "node_modules",
        ".venv",
        "venv",
        "env",
        "__pycache__",
        ".git",
        "dist",
        "build",
        ".next",
        ".nuxt",
        "coverage",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        "site-packages",
    }
)
SECRET_SUFFIXES = frozenset({".pem", ".key", ".crt", ".p12", ".pfx"})
# The app's specification: sent on its own, by the requirements review.
REQUIREMENTS_FILE = "requirements.json"


class SourceFile(msgspec.Struct, frozen=True, kw_only=True):
    """One file as the model sees it: `shown` is the (possibly cut) text sent, `text` the whole file."""

    path: str  # relative to the app folder, with forward slashes
    text: str
    shown: str

    @property
    def truncated(self) -> bool:
        return len(self.shown) < len(self.text)

    def line(self, number: int | None) -> str:
        """The source line `number` (1-based) of the whole file, '' when out of range."""
        lines = self.text.splitlines()
        if number is None or not 1 <= number <= len(lines):
            return ""
        return lines[number - 1]


class Sources(msgspec.Struct, frozen=True, kw_only=True):
    """The files chosen for a prompt, and the ones left out for lack of room."""

    files: list[SourceFile]
    omitted: list[str]  # files that would have been sent but got no room at all
    budget_chars: int

    def by_path(self, path: str) -> SourceFile | None:
        for source in self.files:
            if source.path == path:
                return source
        return None


def _wanted(path: Path) -> bool:
    name = path.name
    if name.startswith(".env") or path.suffix in SECRET_SUFFIXES or name == REQUIREMENTS_FILE:
        return False
    if name.endswith((".min.js", ".min.css", ".map")) or name in {"package-lock.json", "yarn.lock"}:
        return False
    return name in MANIFESTS or path.suffix in SOURCE_SUFFIXES


def _rank(path: str) -> tuple[int, str]:
    """Backend first, then frontend, then the rest: the order the prompt lists them in."""
    top = path.split("/", 1)[0]
    return ({"backend": 0, "frontend": 1}.get(top, 2), path)


def _walk(app_dir: Path) -> list[SourceFile]:
    found: list[SourceFile] = []
    for folder, dirs, names in os.walk(app_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_symlink() or not _wanted(path):
                continue
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    continue
                text = path.read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError):
                continue  # unreadable or binary: nothing a reviewer could read either
            if not text.strip():
                continue
            relative = path.relative_to(app_dir).as_posix()
            found.append(SourceFile(path=relative, text=text, shown=text))
            if len(found) >= MAX_FILES:
                return found
    return found


def share_budget(sizes: list[int], budget: int) -> list[int]:
    """Characters each file may show: all of it when everything fits, else fair shares (water-filling)."""
    allowed = [0] * len(sizes)
    left = budget
    order = sorted(range(len(sizes)), key=lambda index: sizes[index])
    for position, index in enumerate(order):
        share = left // (len(order) - position)
        allowed[index] = min(sizes[index], share)
        left -= allowed[index]
    return allowed


def _fit(files: list[SourceFile], budget: int) -> Sources:
    allowed = share_budget([len(source.text) for source in files], budget)
    shown: list[SourceFile] = []
    omitted: list[str] = []
    for source, room in zip(files, allowed, strict=True):
        if room <= 0:
            omitted.append(source.path)
            continue
        # Cut at a line end so the model never sees half a statement.
        cut = source.text if room >= len(source.text) else source.text[:room].rsplit("\n", 1)[0]
        shown.append(msgspec.structs.replace(source, shown=cut))
    return Sources(files=shown, omitted=omitted, budget_chars=budget)


async def collect_sources(app_dir: Path, budget_chars: int = DEFAULT_BUDGET_CHARS) -> Sources:
    """The app's reviewable files in prompt order, fitted into `budget_chars` characters."""
    files = await asyncio.to_thread(_walk, app_dir)
    files.sort(key=lambda source: _rank(source.path))
    return _fit(files, budget_chars)
