"""`GET /api/tasks/{task_id}/files/{name}`: one file of a task's result folder (`manifest.json` lists them).

The name comes from the client: it is resolved inside the task's folder and refused when it would leave it. The
file is sent as an attachment (never rendered by a browser as a page of this origin).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter
from litestar.response import File

from services.gateway.api.tasks.client_paths import file_inside
from services.gateway.api.tasks.task import TaskIdPath, find_task
from services.gateway.auth import requires
from services.gateway.resources import Resources
from shared.store.paths import inside

FileName = Annotated[str, PathParameter(max_length=1024, pattern=r"^/?[^\x00-\x1f\x7f]+$")]


def result_file(results_root: Path, result_dir: str, name: str) -> Path:
    """`name` inside the task's result folder (blocking: run in a thread)."""
    # The path parameter keeps the "/" that separates it from the route; the name is what follows it.
    return file_inside(inside(results_root, result_dir), name.removeprefix("/"), "name", "path")


@get(
    "/api/tasks/{task_id:str}/files/{name:path}",
    summary="A file of the task's result folder (manifest.json lists them all)",
    tags=["tasks"],
    **requires("read", 404, 422, 503),
    media_type="application/octet-stream",
)
async def get_result_file(resources: NamedDependency[Resources], task_id: TaskIdPath, name: FileName) -> File:
    task = await find_task(resources, task_id)
    if task.result_dir is None:
        raise NotFoundException(f"task {task_id} has no result folder yet (it is {task.status})")
    file = await asyncio.to_thread(result_file, resources.settings.results_dir, task.result_dir, name)
    media_type = "application/json" if file.suffix == ".json" else "application/octet-stream"
    return File(
        path=file, filename=file.name, media_type=media_type, headers={"X-Content-Type-Options": "nosniff"}
    )
