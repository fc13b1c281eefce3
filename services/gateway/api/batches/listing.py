"""`GET /api/batches`: every batch the database knows, newest first, with its counts, so a batch can be found again
once its id is lost. A batch is known from its tasks' rows (`tasks.batch_id`): it appears as soon as the persister
has recorded its first task, and counts the tasks recorded so far."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException
from litestar.params import QueryParameter
from sqlalchemy import func, select

from services.gateway.api.batches.plan import STATUSES
from services.gateway.auth import requires
from services.gateway.queries import Sessions
from services.gateway.resources import DATABASE_ERRORS, Resources
from shared.store.models import Task
from shared.wire.messages import TERMINAL_STATUSES


class BatchHeading(msgspec.Struct, frozen=True, kw_only=True):
    """One batch as listed: when it started, its tasks per status, its models and analysis types."""

    batch_id: str
    created_at: datetime  # its first task's
    last_finished_at: datetime | None  # when its last task ended so far
    total: int  # tasks recorded
    done: int  # of those, in a terminal status
    finished: bool
    by_status: dict[str, int]
    models: list[str]
    analysis_types: list[str]
    waived_rules: list[str]
    links: dict[str, str]


class BatchList(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `GET /api/batches`, newest first."""

    batches: list[BatchHeading]
    total: int
    limit: int
    offset: int


@dataclass
class _Tally:
    """What the rows of one batch add up to."""

    statuses: Counter[str] = field(default_factory=Counter)
    models: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    ended: datetime | None = None

    def add(self, status: str, model: str, analysis_type: str, count: int, finished: datetime | None) -> None:
        self.statuses[status] += count
        self.models.add(model)
        self.types.add(analysis_type)
        if finished is not None and (self.ended is None or finished > self.ended):
            self.ended = finished

    def heading(self, batch_id: str, created_at: datetime, waived: list[str]) -> BatchHeading:
        total = sum(self.statuses.values())
        done = sum(self.statuses[status] for status in TERMINAL_STATUSES)
        return BatchHeading(
            batch_id=batch_id,
            created_at=created_at,
            last_finished_at=self.ended,
            total=total,
            done=done,
            finished=done == total,
            by_status={status: self.statuses.get(status, 0) for status in STATUSES},
            models=sorted(self.models),
            analysis_types=sorted(self.types),
            waived_rules=waived,
            links={"self": f"/api/batches/{batch_id}", "report": f"/api/reports/models?batch={batch_id}"},
        )


async def list_batches(sessions: Sessions, limit: int, offset: int) -> BatchList:
    """One page of batches, newest first (by their first task), each with its counts."""
    created = func.min(Task.created_at).label("created")
    page = (
        select(Task.batch_id, created, func.min(Task.task_id))
        .where(Task.batch_id.is_not(None))
        .group_by(Task.batch_id)
        .order_by(created.desc(), Task.batch_id)
        .limit(limit)
        .offset(offset)
    )
    async with sessions() as session:
        total = await session.scalar(select(func.count(func.distinct(Task.batch_id)))) or 0
        heads = (await session.execute(page)).all()
        ids = [batch_id for batch_id, _created, _first in heads]
        rows = (
            await session.execute(
                select(
                    Task.batch_id, Task.status, Task.model_slug, Task.analysis_type, func.count(),
                    func.max(Task.finished_at),
                )
                .where(Task.batch_id.in_(ids))
                .group_by(Task.batch_id, Task.status, Task.model_slug, Task.analysis_type)
            )
        ).all()  # fmt: skip
        # Every task of a batch carries the batch's waivers: any one of them says them.
        firsts = [first for _batch, _created, first in heads]
        waived = dict(
            (
                await session.execute(
                    select(Task.batch_id, Task.waived_rules).where(Task.task_id.in_(firsts))
                )
            ).all()
        )
    tallies = {str(batch_id): _Tally() for batch_id in ids}
    for batch_id, status, model, analysis_type, count, finished in rows:
        tallies[str(batch_id)].add(status, model, analysis_type, count, finished)
    batches = [
        tallies[str(batch_id)].heading(str(batch_id), created_at, list(waived.get(batch_id) or []))
        for batch_id, created_at, _first in heads
    ]
    return BatchList(batches=batches, total=total, limit=limit, offset=offset)


@get("/api/batches", summary="List batches, newest first, with their counts", tags=["batches"],
     **requires("read", 422, 503))  # fmt: skip
async def get_batches(
    resources: NamedDependency[Resources],
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    offset: Annotated[int, QueryParameter(ge=0, le=1_000_000)] = 0,
) -> BatchList:
    try:
        return await list_batches(resources.sessions, limit, offset)
    except DATABASE_ERRORS as error:
        raise ServiceUnavailableException(f"database unavailable: {error.__class__.__name__}") from error
