"""How big an app's source is: lines per language, counted from its files (the apps listing and the reports)."""

from __future__ import annotations

import os
from pathlib import Path

# Extensions counted as source, and the language each stands for; anything else (lock files, images) is not code.
LANGUAGES: dict[str, str] = {
    ".py": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".html": "html",
    ".css": "css",
}

# Folders of installed or generated files: counting them would measure the dependencies, not the app.
SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", ".venv", "venv", "dist", "build"})


def _source_files(folder: Path) -> list[Path]:
    files = []
    # os.walk, so that a skipped folder is never entered: an app's node_modules alone can hold 100,000 files.
    for parent, folders, names in os.walk(folder):
        folders[:] = sorted(
            name for name in folders if name not in SKIPPED_FOLDERS and not name.startswith(".")
        )
        for name in sorted(names):
            path = Path(parent, name)
            if path.suffix in LANGUAGES and not path.is_symlink() and path.is_file():
                files.append(path)
    return files


def total_lines(folder: Path) -> int:
    """Non-blank source lines under `folder`, every language (blocking: call it through asyncio.to_thread)."""
    return sum(lines_per_language(folder).values())


def lines_per_language(folder: Path) -> dict[str, int]:
    """Non-blank lines per language under `folder` (blocking: call it through asyncio.to_thread)."""
    counts: dict[str, int] = {}
    for path in _source_files(folder):
        with path.open("rb") as handle:
            lines = sum(1 for line in handle if line.strip())
        language = LANGUAGES[path.suffix]
        counts[language] = counts.get(language, 0) + lines
    return dict(sorted(counts.items()))
