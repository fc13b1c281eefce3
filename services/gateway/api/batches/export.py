"""`GET /api/batches/{batch_id}/findings?format=jsonl|csv`: every finding of every task of a batch in one streamed
answer (a study needed about 1,300 calls of the per-task route for what this sends at once).

Each finding is one line (a JSON object, or a CSV row) naming its task and app, with the finding's weakness, family,
origin, whether its batch waived it and its proof. Tasks are read one after another and their findings in pages of
EXPORT_PAGE rows (keyset on the row id), so the gateway holds one page in memory however large the batch.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter
from litestar.response import Stream
from sqlalchemy import select

from services.gateway.answer_formats import ExportFormat, media_type
from services.gateway.api.batches.batch import BatchIdPath
from services.gateway.auth import requires
from services.gateway.queries import Sessions
from services.gateway.resources import Resources
from shared.results.rule_table import weakness
from shared.results.waivers import Waivers
from shared.results.weakness_families import family_of
from shared.store.models import FindingRow, Task

EXPORT_PAGE = 1000
COLUMNS = (
    "batch_id", "task_id", "model_slug", "app_number", "analysis_type", "task_status", "service", "tool",
    "rule_id", "severity", "category", "cwe", "weakness", "family", "origin", "waived", "confirmed", "path",
    "line", "end_line", "message", "fingerprint", "issue_group", "proof",
)  # fmt: skip
_TASK_COLUMNS = (
    Task.task_id,
    Task.model_slug,
    Task.app_number,
    Task.analysis_type,
    Task.status,
    Task.waived_rules,
)
_FINDING_COLUMNS = (
    FindingRow.id, FindingRow.service, FindingRow.tool, FindingRow.rule_id, FindingRow.severity,
    FindingRow.category, FindingRow.cwe, FindingRow.origin, FindingRow.path, FindingRow.line, FindingRow.end_line,
    FindingRow.message, FindingRow.fingerprint, FindingRow.issue_group, FindingRow.proof,
)  # fmt: skip


async def batch_tasks(sessions: Sessions, batch_id: str) -> list[tuple[Any, ...]]:
    """The batch's tasks (id, model, app, type, status, waivers), by model, app and type."""
    async with sessions() as session:
        rows = await session.execute(
            select(*_TASK_COLUMNS)
            .where(Task.batch_id == batch_id)
            .order_by(Task.model_slug, Task.app_number, Task.analysis_type, Task.task_id)
        )
        return [tuple(row) for row in rows.all()]


async def task_finding_pages(sessions: Sessions, task_id: str) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The task's findings in pages of EXPORT_PAGE, in the order they were written."""
    after = 0
    while True:
        async with sessions() as session:
            page = (
                await session.execute(
                    select(*_FINDING_COLUMNS)
                    .where(FindingRow.task_id == task_id, FindingRow.id > after)
                    .order_by(FindingRow.id)
                    .limit(EXPORT_PAGE)
                )
            ).all()
        if not page:
            return
        yield [tuple(row) for row in page]
        after = page[-1][0]


def exported(
    batch_id: str, task: tuple[Any, ...], finding: tuple[Any, ...], waivers: Waivers
) -> dict[str, Any]:
    """One finding as exported: its task, the finding, and what a study reads off it."""
    task_id, model, app_number, analysis_type, status, _waived = task
    (_id, service, tool, rule, severity, category, cwe, origin, path, line, end_line, message, print_, group,
     proof) = finding  # fmt: skip
    named = weakness(tool, rule, cwe)
    family = family_of(named)
    return {
        "batch_id": batch_id,
        "task_id": task_id,
        "model_slug": model,
        "app_number": app_number,
        "analysis_type": analysis_type,
        "task_status": status,
        "service": service,
        "tool": tool,
        "rule_id": rule,
        "severity": severity,
        "category": category,
        "cwe": cwe,
        "weakness": named,
        "family": family.id if family else None,
        "origin": origin,
        "waived": waivers.covers(tool, rule, cwe),
        "confirmed": proof is not None,
        "path": path,
        "line": line,
        "end_line": end_line,
        "message": message,
        "fingerprint": print_,
        "issue_group": group,
        "proof": proof,
    }


def csv_lines(rows: Iterable[dict[str, Any]], header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    for row in rows:
        values = {**row, "proof": msgspec.json.encode(row["proof"]).decode() if row["proof"] else ""}
        writer.writerow(["" if values[name] is None else values[name] for name in COLUMNS])
    return out.getvalue().encode()


async def export_lines(
    sessions: Sessions, batch_id: str, tasks: list[tuple[Any, ...]], form: ExportFormat
) -> AsyncIterator[bytes]:
    """The batch's findings, one encoded page at a time (the CSV header first)."""
    if form == "csv":
        yield csv_lines((), header=True)
    for task in tasks:
        waivers = Waivers.of(task[5] or ())
        async for page in task_finding_pages(sessions, task[0]):
            rows = [exported(batch_id, task, finding, waivers) for finding in page]
            if form == "csv":
                yield csv_lines(rows, header=False)
            else:
                yield b"".join(msgspec.json.encode(row) + b"\n" for row in rows)


@get(
    "/api/batches/{batch_id:str}/findings",
    summary="Every finding of a batch, streamed as JSON lines or CSV",
    description="One line per finding of every task of the batch (any status), naming its task and app, with its "
    "weakness, family, origin, whether the batch waived it, and its proof. 404 when no task names the batch yet.",
    tags=["batches"],
    **requires("read", 404, 422, 503),
)
async def export_batch_findings(
    resources: NamedDependency[Resources],
    batch_id: BatchIdPath,
    format: Annotated[ExportFormat, QueryParameter(description="jsonl (default) or csv")] = "jsonl",
) -> Stream:
    tasks = await batch_tasks(resources.sessions, batch_id)
    if not tasks:
        raise NotFoundException(f"batch {batch_id} has no recorded task")
    return Stream(
        export_lines(resources.sessions, batch_id, tasks, format),
        media_type=media_type(format),
        headers={"Content-Disposition": f'attachment; filename="{batch_id}-findings.{format}"'},
    )
