"""`GET /api/tasks/{task_id}/source`: the lines around a finding, read from the task's app under the apps root.

The path comes from the client, so it is resolved inside the app's folder (symlinks included) and refused when it
would leave it; only a regular file is read, at most `MAX_LINES` lines of it, each cut to `MAX_LINE_CHARS`.
"""

from __future__ import annotations

import asyncio
from itertools import islice
from pathlib import Path
from typing import Annotated

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter

from services.gateway.api.tasks.client_paths import file_inside
from services.gateway.api.tasks.task import TaskIdPath, find_task
from services.gateway.auth import requires
from services.gateway.resources import Resources
from shared.store.paths import app_dir

MAX_LINES = 200  # what one answer shows: a finding's lines and their context, never a whole large file
MAX_LINE_CHARS = 400  # a minified line is cut, not sent whole
# A relative path of printable characters: no NUL (the OS refuses it) and nothing a URL or a log line would mangle.
RelativePath = Annotated[str, QueryParameter(min_length=1, max_length=1024, pattern=r"^[^\x00-\x1f\x7f]+$")]


class SourceLine(msgspec.Struct, frozen=True):
    number: int
    text: str


class SourceContext(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `GET /api/tasks/{task_id}/source`: lines `first`… of `path`, relative to the app's folder."""

    task_id: str
    path: str
    line: int
    end_line: int
    lines: list[SourceLine]


def read_lines(file: Path, first: int, last: int) -> list[SourceLine]:
    """Lines `first`..`last` (1-based, inclusive) of a text file; fewer when it ends sooner (blocking)."""
    with file.open(encoding="utf-8", errors="replace", newline=None) as handle:
        chosen = islice(handle, first - 1, last)
        return [
            SourceLine(number, text.rstrip("\n")[:MAX_LINE_CHARS])
            for number, text in enumerate(chosen, first)
        ]


def source_file(apps_root: Path, model_slug: str, app_number: int, path: str) -> Path:
    """The app's file at `path` (blocking: run in a thread)."""
    return file_inside(app_dir(apps_root, model_slug, app_number), path, "path", "query")


@get(
    "/api/tasks/{task_id:str}/source",
    summary="Source lines around a finding, from the task's app (a path never leaves the app's folder)",
    tags=["tasks"],
    **requires("read", 404, 422, 503),
)
async def get_source(
    resources: NamedDependency[Resources],
    task_id: TaskIdPath,
    path: RelativePath,
    line: Annotated[int, QueryParameter(ge=1, le=10_000_000)],
    end_line: Annotated[int | None, QueryParameter(ge=1, le=10_000_000)] = None,
    context: Annotated[int, QueryParameter(ge=0, le=50)] = 3,
) -> SourceContext:
    task = await find_task(resources, task_id)
    last_flagged = max(line, end_line or line)
    file = await asyncio.to_thread(
        source_file, resources.settings.apps_dir, task.model_slug, task.app_number, path
    )
    first = max(1, line - context)
    last = min(last_flagged + context, first + MAX_LINES - 1)
    try:
        lines = await asyncio.to_thread(read_lines, file, first, last)
    except OSError as error:  # unreadable (permissions), or gone since it was found
        raise NotFoundException(f"cannot read {path!r}: {error.strerror}") from error
    return SourceContext(task_id=task_id, path=path, line=line, end_line=last_flagged, lines=lines)
