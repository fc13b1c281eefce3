"""The apps under the apps root: `<model_slug>/app<N>` folders, found on disk (blocking: run in a thread)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from shared.wire.tasks import MODEL_SLUG_PATTERN

_SLUG_RE = re.compile(MODEL_SLUG_PATTERN)
_APP_RE = re.compile(r"^app([1-9][0-9]{0,4})$")


@dataclass(frozen=True)
class AppFolder:
    model_slug: str
    app_number: int
    path: Path


def app_folders(apps_root: Path) -> list[AppFolder]:
    """Every app folder whose names are valid (others are ignored), by model then number.

    A symlink that leaves the root is skipped: what is listed here is what a request may analyze.
    """
    if not apps_root.is_dir():
        return []
    root = apps_root.resolve()
    found = []
    for model in apps_root.iterdir():
        if not (model.is_dir() and _SLUG_RE.match(model.name) and ".." not in model.name):
            continue
        for app in model.iterdir():
            match = _APP_RE.match(app.name)
            if match and app.is_dir() and root in app.resolve().parents:
                found.append(AppFolder(model.name, int(match.group(1)), app))
    return sorted(found, key=lambda folder: (folder.model_slug, folder.app_number))
