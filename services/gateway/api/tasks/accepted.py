"""Tasks the gateway accepted that the database may not know yet: the tasks bucket's `accepted.<task_id>` entries.

Between the 202 and the persister recording the request there is a short window; reading the bucket closes it,
so a GET right after a 202 answers `pending` instead of 404.
"""

from __future__ import annotations

import logging

import msgspec
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from services.gateway.schemas import Progress, TaskDetail
from shared.results.findings import SEVERITIES
from shared.wire.catalog import planned_tools
from shared.wire.messages import AnalysisRequest, decode_request
from shared.wire.subjects import accepted_key

log = logging.getLogger(__name__)


async def accepted_request(tasks: KeyValue, task_id: str) -> AnalysisRequest | None:
    """The request as accepted, or None when the bucket has no (valid) entry for the task."""
    try:
        entry = await tasks.get(accepted_key(task_id))
    except KeyNotFoundError:  # also raised for deleted / purged keys
        return None
    if not entry.value:
        return None
    try:
        return decode_request(entry.value)
    except msgspec.DecodeError as error:
        log.warning("unreadable accepted entry for %s: %s", task_id, error, extra={"task_id": task_id})
        return None


def pending_detail(request: AnalysisRequest) -> TaskDetail:
    """What is known of an accepted task the persister has not recorded yet."""
    return TaskDetail(
        task_id=request.task.id,
        model_slug=request.task.model_slug,
        app_number=request.task.app_number,
        analysis_type=request.task.analysis_type,
        status="pending",
        status_reason="accepted; waiting to be recorded and picked up",
        priority=request.priority,
        requested_tools=planned_tools(request.task.analysis_type, request.tools),
        progress=Progress(percent=0.0, message=None),
        created_at=request.occurred_at,
        started_at=None,
        finished_at=None,
        findings_count=0,
        severity_breakdown={str(level): 0 for level in SEVERITIES},
        findings_by_tool={},
        services=[],
        tools=[],
        result_dir=None,
        trace_id=None,
        worker=None,
    )
