"""A scenario's verdict: of the tasks the gateway accepted, how many ended, were lost or were duplicated, and
where the database and the folders disagree; one row of the suite's printed table.

- **lost**: an accepted task id without a terminal row naming its folder;
- **duplicated**: a task with more than one result folder, more finding rows than its tool runs reported, more
  than one terminal event on ASSAY_EVENTS or applied by the persister, a task id the gateway handed out twice, or a
  task row no accepted submission asked for (a retry that doubled the work);
- **DB≢files**: a task whose rows and folder disagree (tests/support/faults/agreement.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from shared.jetstream.nats_users import ADMIN
from tests.support.faults import agreement
from tests.support.faults.records import Rows, read_rows, result_folders, terminal_events
from tests.support.stack import Stack

COLUMNS = (
    "scenario",
    "database",
    "tasks",
    "submitted",
    "open at fault",
    "terminal",
    "failed",
    "lost",
    "duplicated",
    "DB≢files",
    "s",
)
WIDTHS = (30, 19, 5, 9, 13, 8, 6, 4, 10, 8, 4)


@dataclass
class Verdict:
    """What one scenario left behind; `row()` is its line of the table (once `scenario` and the figures of the
    run are filled in)."""

    submitted: int  # tasks the gateway accepted
    terminal: int
    failed: dict[str, str] = field(default_factory=dict)  # task id → reason
    lost: list[str] = field(default_factory=list)
    duplicated: dict[str, list[str]] = field(default_factory=dict)
    disagreements: dict[str, list[str]] = field(default_factory=dict)
    scenario: str = ""
    database: str = ""
    asked: int = 0  # tasks the client meant to submit
    open_at_fault: int = 0  # accepted tasks not yet ended when the fault was dealt: it hit work in flight
    seconds: float = 0.0
    note: str = ""  # what the scenario measured besides the counts, printed after the row
    judged: set[str] = field(
        default_factory=set
    )  # tasks this verdict judged: later ones on the stack leave them

    def row(self) -> str:
        values = (
            self.scenario,
            self.database,
            self.asked,
            self.submitted,
            self.open_at_fault,
            self.terminal,
            len(self.failed),
            len(self.lost),
            len(self.duplicated),
            len(self.disagreements),
            round(self.seconds),
        )
        row = " | ".join(str(value).ljust(width) for value, width in zip(values, WIDTHS, strict=True))
        return f"{row} | {self.note}" if self.note else row

    def details(self, limit: int = 10) -> str:
        """The first few of each kind of problem, for an assertion message."""
        parts = [f"lost: {self.lost[:limit]}"] if self.lost else []
        for label, found in (("duplicated", self.duplicated), ("DB≢files", self.disagreements)):
            if found:
                parts.append(f"{label}: {dict(list(found.items())[:limit])}")
        return "; ".join(parts)


def header() -> str:
    line = " | ".join(name.ljust(width) for name, width in zip(COLUMNS, WIDTHS, strict=True))
    return f"{line}\n{'-' * len(line)}"


def _duplicates(accepted: list[str], known: set[str], rows_tasks: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for task_id, times in Counter(accepted).items():
        if times > 1:
            found[task_id] = [f"accepted {times} times"]
    for task_id in rows_tasks - known - set(accepted):
        found[task_id] = ["a task row no accepted submission asked for"]
    return found


def judge(
    accepted: list[str],
    rows: Rows,
    folders: dict[str, list[Path]],
    events: dict[str, list[str]],
    disagreements: dict[str, list[str]],
    known: Collection[str] = (),
) -> Verdict:
    """The verdict on `accepted` from what the run left: rows, result folders, terminal event kinds per task and
    the differences between database and folders (agreement.py), by task. `known`: tasks accepted on the same stack by earlier scenarios; they are judged by their own verdicts, so only
    `accepted` and the rows and folders nobody asked for are judged here."""
    asked = set(accepted)
    duplicated = _duplicates(accepted, set(known), set(rows.tasks))
    for task_id in (rows.tasks.keys() | folders.keys()) - (set(known) - asked):
        problems = []
        if len(folders.get(task_id, [])) > 1:
            problems.append(f"{len(folders[task_id])} result folders")
        finding_rows, counted = rows.finding_rows.get(task_id, 0), rows.tool_run_findings.get(task_id, 0)
        if finding_rows > counted:
            problems.append(f"{finding_rows} finding rows for {counted} findings its tool runs reported")
        if len(events.get(task_id, [])) > 1:
            problems.append(
                f"{len(events[task_id])} terminal events on the stream ({', '.join(events[task_id])})"
            )
        if rows.terminal_applied.get(task_id, 0) > 1:
            problems.append(f"{rows.terminal_applied[task_id]} terminal events applied")
        if problems:
            duplicated.setdefault(task_id, []).extend(problems)
    ended = [
        rows.tasks[task_id] for task_id in asked if task_id in rows.tasks and rows.tasks[task_id].terminal
    ]
    return Verdict(
        judged=asked | (rows.tasks.keys() | folders.keys()) - set(known),
        submitted=len(asked),
        terminal=len(ended),
        failed={row.task_id: row.status_reason or "" for row in ended if row.status == "failed"},
        lost=sorted(asked - {row.task_id for row in ended}),
        duplicated=duplicated,
        disagreements={
            task_id: found
            for task_id, found in disagreements.items()
            if task_id in asked or task_id not in known
        },
    )


def audit(stack: Stack, accepted: list[str], known: Collection[str] = ()) -> Verdict:
    """Read the stack's rows, folders and terminal events, and judge the run of `accepted` (see `judge`)."""
    rows = asyncio.run(read_rows(stack.env["ASSAY_DATABASE_URL"]))
    events = asyncio.run(terminal_events(stack.nats.url, stack.creds(ADMIN)))
    folders = result_folders(stack.results_dir)
    return judge(accepted, rows, folders, events, agreement.differences(stack), known)
