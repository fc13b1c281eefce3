"""The routes of one task: queuing it, its state, findings, issues, diff, events, source, result files and trace."""

from __future__ import annotations

from litestar import Router

from services.gateway.api.tasks.analysis import run_analysis
from services.gateway.api.tasks.diffs import get_diff
from services.gateway.api.tasks.events import task_event_stream
from services.gateway.api.tasks.files import get_result_file
from services.gateway.api.tasks.issues import get_issues
from services.gateway.api.tasks.source import get_source
from services.gateway.api.tasks.task import cancel_task, get_findings, get_task, list_all_tasks
from services.gateway.api.tasks.trace import get_task_trace

router = Router(
    "/",
    route_handlers=[
        run_analysis,
        list_all_tasks,
        get_task,
        get_findings,
        get_issues,
        get_diff,
        cancel_task,
        get_task_trace,
        get_source,
        get_result_file,
        task_event_stream,
    ],
)
