"""The crash-loop scenario: one request kills the orchestrator every time it starts (the test deals the `kill -9`
as soon as the task's row names the new orchestrator process as its worker, and starts the orchestrator again),
while the client keeps submitting ordinary tasks. After `max_deliver` deliveries the request must be a dead letter
on ASSAY_DLQ and its task `failed` with the reason, within max_deliver × ack_wait plus a margin; the ordinary
tasks are judged as in every other scenario.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import msgspec
from sqlalchemy import select

from shared.jetstream.connection import connect
from shared.jetstream.nats_users import ADMIN
from shared.store.database import create_engine
from shared.store.models import Task
from shared.wire import subjects
from shared.wire.messages import DeadLetter
from tests.support.faults.analyzer import SLOW_MODEL
from tests.support.faults.load import Submitter
from tests.support.faults.records import TASK_COLUMNS, TaskRow, wait_terminal
from tests.support.faults.scenarios import BODY, DOWN_S, FaultStack, Scale
from tests.support.faults.verdict import Verdict, audit
from tests.support.stack import Stack

MAX_DELIVER = 5  # the default ASSAY_MAX_DELIVER, which the suite's stacks keep
NAME = "orchestrator crash loop"
POLL_S = 0.2
MARGIN_S = 20.0  # beyond max_deliver × ack_wait: restarts of the orchestrator and the persister's lag


@dataclass
class CrashLoop:
    """What became of the crash-looping request: how often it killed the orchestrator, its task's row at the
    end, the dead letters naming it, and the seconds from the first kill to its task's end (None: it never ended)."""

    task_id: str
    kills: int
    row: TaskRow | None
    dead_letters: list[DeadLetter]
    ended_after_s: float | None


async def _row(database_url: str, task_id: str) -> tuple[str | None, TaskRow | None]:
    """(worker, row) of the task, or (None, None) before the persister has its row."""
    engine = create_engine(database_url)
    query = select(Task.worker, *TASK_COLUMNS).where(Task.task_id == task_id)
    try:
        async with engine.connect() as connection:
            found = (await connection.execute(query)).first()
    finally:
        await engine.dispose()
    return (found[0], TaskRow(*found[1:])) if found else (None, None)


def _started_by(stack: Stack, task_id: str, pid: int, deadline: float) -> TaskRow | None:
    """Wait until the task's row names orchestrator `pid` as its worker (it started the task); its row then, or
    once it ended, or at `deadline`."""
    database_url = stack.env["ASSAY_DATABASE_URL"]
    while True:
        worker, row = asyncio.run(_row(database_url, task_id))
        if (row is not None and row.terminal) or time.monotonic() > deadline:
            return row
        if worker is not None and worker.endswith(f":{pid}") and row is not None and row.status == "running":
            return row
        time.sleep(POLL_S)


async def dead_letters(nats_url: str, creds: str, task_id: str) -> list[DeadLetter]:
    """Every dead letter on ASSAY_DLQ that names `task_id` (read as `admin`)."""
    client = await connect(nats_url, "fault-suite-dlq", creds)
    try:
        js = client.jetstream()
        state = (await js.stream_info(subjects.DLQ_STREAM)).state
        letters = []
        for sequence in range(state.first_seq, state.last_seq + 1) if state.messages else ():
            raw = await js.get_msg(subjects.DLQ_STREAM, sequence)
            letter = msgspec.json.decode(raw.data or b"", type=DeadLetter)
            if letter.task_id == task_id:
                letters.append(letter)
        return letters
    finally:
        await client.close()


def run_crash_loop(faulty: FaultStack, scale: Scale) -> tuple[Verdict, CrashLoop]:
    """Kill the orchestrator each time it starts the slow request while ordinary tasks flow; judge both."""
    stack = faulty.stack
    started = time.monotonic()
    loop_s = MAX_DELIVER * scale.ack_wait_s
    slow = stack.submit(**{**BODY, "model_slug": SLOW_MODEL})
    # The ordinary tasks spread over the whole loop, so that some are in flight at each kill.
    rate = min(scale.rate_per_s, scale.tasks / loop_s)
    submitter = Submitter(stack.gateway_url, stack.headers, BODY, scale.tasks, rate).start()
    deadline = started + loop_s + 2 * MARGIN_S  # the first start, and the margin, after which it is late
    kills, first_kill, row = 0, None, None
    while time.monotonic() < deadline:
        row = _started_by(stack, slow, stack.processes["orchestrator"].pid, deadline)
        if row is None or row.terminal or time.monotonic() > deadline:
            break
        stack.kill("orchestrator")
        kills += 1
        first_kill = first_kill or time.monotonic()
        time.sleep(DOWN_S)
        stack.restart("orchestrator")
    ended_after_s = time.monotonic() - first_kill if first_kill and row and row.terminal else None
    submission = submitter.join()
    assert not submission.refused, submission.refused[:5]
    accepted = [slow, *submission.accepted]
    asyncio.run(wait_terminal(stack.env["ASSAY_DATABASE_URL"], submission.accepted, scale.wait_s))
    verdict = audit(stack, accepted, faulty.judged)
    faulty.judged |= verdict.judged
    verdict.scenario, verdict.database, verdict.asked = NAME, faulty.database, scale.tasks + 1
    verdict.open_at_fault = 1
    verdict.seconds = time.monotonic() - started
    letters = asyncio.run(dead_letters(stack.nats.url, stack.creds(ADMIN), slow))
    _worker, row = asyncio.run(_row(stack.env["ASSAY_DATABASE_URL"], slow))
    ended = "never ended" if ended_after_s is None else f"{row.status if row else '?'} {ended_after_s:.0f} s"
    verdict.note = (
        f"{kills} kills; {len(letters)} dead letter(s) "
        f"({', '.join(str(letter.deliveries) for letter in letters) or 'none'} deliveries); "
        f"its task {ended} after the first kill (limit {loop_s + MARGIN_S:g} s)"
    )
    return verdict, CrashLoop(slow, kills, row, letters, ended_after_s)
