"""The reaper: a task that has heard nothing for too long is failed, with a folder.

An orchestrator that dies mid-task sends no terminal event, and a request no orchestrator ever takes (none running,
or the request given up without a `failed` event) sends none either; without this such a task would stay `running`
or `pending` forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from opentelemetry import trace

from services.persister import lookups
from services.persister.completion import PersisterContext, fail_task
from shared.telemetry.tracing import TASK_ID_ATTRIBUTE
from shared.wire.messages import utcnow

log = logging.getLogger(__name__)
tracer = trace.get_tracer("services.persister")

REAP_INTERVAL_S = 30.0


def stale_reason(stale_after_s: float) -> str:
    return f"no event from the orchestrator for {stale_after_s:g} s"


def unstarted_reason(pending_limit_s: float) -> str:
    return f"not started within {pending_limit_s:g} s: no orchestrator took the request"


async def reap_once(
    ctx: PersisterContext, stale_after_s: float, pending_limit_s: float | None = None
) -> list[str]:
    """Fail every running task with no update for `stale_after_s`, and every task still pending after
    `pending_limit_s`; returns their ids."""
    rounds = [("running", stale_after_s, stale_reason(stale_after_s))]
    if pending_limit_s is not None:
        rounds.append(("pending", pending_limit_s, unstarted_reason(pending_limit_s)))
    reaped = []
    for status, limit_s, reason in rounds:
        cutoff = utcnow() - timedelta(seconds=limit_s)
        for task_id in await lookups.stale_tasks(ctx.sessions, status, cutoff):
            task = await lookups.load_task(ctx.sessions, task_id)
            if task is None or task.status != status or (task.updated_at and task.updated_at >= cutoff):
                continue  # an event arrived since the query
            with tracer.start_as_current_span("reap task", attributes={TASK_ID_ATTRIBUTE: task_id}):
                log.warning("task %s is stale: %s", task_id, reason, extra={"task_id": task_id})
                await fail_task(ctx, task_id, reason)
            reaped.append(task_id)
    return reaped


async def run_reaper(
    ctx: PersisterContext,
    stale_after_s: float,
    stop: asyncio.Event,
    interval_s: float = REAP_INTERVAL_S,
    pending_limit_s: float | None = None,
) -> None:
    """Reap every `interval_s` until `stop` is set; one failed round is logged and the next one tries again."""
    while not stop.is_set():
        try:
            await reap_once(ctx, stale_after_s, pending_limit_s)
        except Exception:
            log.exception("reaper round failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
