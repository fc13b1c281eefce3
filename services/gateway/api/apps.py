"""`GET /api/apps` and `GET /api/models`: what there is to analyze, how large it is, and its latest tasks."""

from __future__ import annotations

import asyncio
from datetime import datetime

import msgspec
from litestar import Router, get
from litestar.di import NamedDependency
from sqlalchemy import func, select

from services.gateway.api.app_folders import AppFolder, app_folders
from services.gateway.auth import requires
from services.gateway.queries import Sessions
from services.gateway.resources import Resources
from shared.results.source_size import lines_per_language
from shared.store.models import Task


class LatestTask(msgspec.Struct, frozen=True, kw_only=True):
    task_id: str
    status: str
    created_at: datetime
    finished_at: datetime | None


class AppView(msgspec.Struct, frozen=True, kw_only=True):
    model_slug: str
    app_number: int
    source_lines: dict[str, int]  # non-blank lines per language
    latest_tasks: dict[str, LatestTask]  # analysis type -> its newest task


class AppList(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `GET /api/apps`: every app under the apps root."""

    apps: list[AppView]
    total: int


class ModelView(msgspec.Struct, frozen=True, kw_only=True):
    model_slug: str
    apps: int  # app folders under the apps root
    app_numbers: list[int]
    tasks: int  # tasks recorded for the model's apps


class ModelList(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `GET /api/models`."""

    models: list[ModelView]


AppKey = tuple[str, int]


async def latest_tasks(sessions: Sessions) -> dict[AppKey, dict[str, LatestTask]]:
    """The newest task of each (app, analysis type), from the tasks table."""
    newest = (
        select(
            Task.model_slug, Task.app_number, Task.analysis_type, func.max(Task.created_at).label("created")
        )
        .group_by(Task.model_slug, Task.app_number, Task.analysis_type)
        .subquery()
    )
    query = select(Task).join(
        newest,
        (Task.model_slug == newest.c.model_slug)
        & (Task.app_number == newest.c.app_number)
        & (Task.analysis_type == newest.c.analysis_type)
        & (Task.created_at == newest.c.created),
    )
    async with sessions() as session:
        rows = (await session.scalars(query.order_by(Task.task_id))).all()
    latest: dict[AppKey, dict[str, LatestTask]] = {}
    for row in rows:
        latest.setdefault((row.model_slug, row.app_number), {})[row.analysis_type] = msgspec.convert(
            row, LatestTask, from_attributes=True
        )
    return latest


async def task_counts(sessions: Sessions) -> dict[str, int]:
    """Tasks recorded per model."""
    async with sessions() as session:
        rows = await session.execute(select(Task.model_slug, func.count()).group_by(Task.model_slug))
        return {model: count for model, count in rows.all()}


def _sizes(folders: list[AppFolder]) -> list[dict[str, int]]:
    return [lines_per_language(folder.path) for folder in folders]


@get(
    "/api/apps",
    summary="Every app under the apps root, its size and latest tasks",
    tags=["apps"],
    **requires("read", 503),
)
async def list_apps(resources: NamedDependency[Resources]) -> AppList:
    folders = await asyncio.to_thread(app_folders, resources.settings.apps_dir)
    sizes = await asyncio.to_thread(_sizes, folders)
    latest = await latest_tasks(resources.sessions)
    apps = [
        AppView(
            model_slug=folder.model_slug,
            app_number=folder.app_number,
            source_lines=size,
            latest_tasks=dict(sorted(latest.get((folder.model_slug, folder.app_number), {}).items())),
        )
        for folder, size in zip(folders, sizes, strict=True)
    ]
    return AppList(apps=apps, total=len(apps))


@get(
    "/api/models",
    summary="Every model with apps under the apps root or tasks recorded",
    tags=["apps"],
    **requires("read", 503),
)
async def list_models(resources: NamedDependency[Resources]) -> ModelList:
    folders = await asyncio.to_thread(app_folders, resources.settings.apps_dir)
    tasks = await task_counts(resources.sessions)
    numbers: dict[str, list[int]] = {model: [] for model in tasks}
    for folder in folders:
        numbers.setdefault(folder.model_slug, []).append(folder.app_number)
    models = [
        ModelView(model_slug=model, apps=len(apps), app_numbers=apps, tasks=tasks.get(model, 0))
        for model, apps in sorted(numbers.items())
    ]
    return ModelList(models=models)


# The apps and models Assay can analyze.
router = Router("/", route_handlers=[list_apps, list_models])
