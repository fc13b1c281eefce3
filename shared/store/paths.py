"""Paths built from input (model slug, app number, task id) that can never leave their root."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from shared.operations.errors import InputError
from shared.wire.tasks import MODEL_SLUG_PATTERN, TASK_ID_RE

_SLUG_RE = re.compile(MODEL_SLUG_PATTERN)


class UnsafePathError(InputError):
    """A name from input would resolve outside its root folder."""


def check_slug(model_slug: str) -> str:
    if not _SLUG_RE.match(model_slug) or ".." in model_slug:
        raise UnsafePathError(
            f"model slug {model_slug!r} is not allowed: use lowercase letters, digits, '.', '_' or '-' "
            "(1-128 characters, starting with a letter or digit, no '..')"
        )
    return model_slug


def check_app_number(app_number: int) -> int:
    if isinstance(app_number, bool) or not isinstance(app_number, int) or not 1 <= app_number <= 99999:
        raise UnsafePathError(f"app number {app_number!r} is not allowed: use a whole number from 1 to 99999")
    return app_number


def inside(root: Path, *parts: str) -> Path:
    """`root/parts…`, resolved, refusing any result that is not inside `root` (symlinks included)."""
    base = root.resolve()
    target = base.joinpath(*parts).resolve()
    if target != base and base not in target.parents:
        raise UnsafePathError(f"{'/'.join(parts)!r} resolves outside {base}")
    return target


def app_dir(apps_root: Path, model_slug: str, app_number: int) -> Path:
    """`<apps_root>/<model_slug>/app<N>` for a valid slug and number."""
    return inside(apps_root, check_slug(model_slug), f"app{check_app_number(app_number)}")


def result_folder_name(analysis_type: str, task_id: str, when: datetime) -> str:
    """`task_<analysis_type>_<hex>_<YYYYmmddTHHMMSSZ>` for task id `task_<hex>`."""
    if not TASK_ID_RE.match(task_id):
        raise UnsafePathError(f"task id {task_id!r} is not of the form task_<12 hex>")
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    return f"task_{analysis_type}_{task_id.removeprefix('task_')}_{stamp}"


def result_dir(results_root: Path, model_slug: str, app_number: int, folder_name: str) -> Path:
    """`<results_root>/<model_slug>/app<N>/<folder_name>`."""
    return inside(results_root, check_slug(model_slug), f"app{check_app_number(app_number)}", folder_name)


def prepared_cache(app_work_dir: Path) -> Path:
    """Where the app runner keeps what it prepared by hash (virtualenvs, node_modules): the one folder the static
    analyzer reads an app's environment from."""
    return app_work_dir / "cache"
