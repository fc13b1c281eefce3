"""The must-show of the cluster: the real stack (separate processes, two orchestrators) on a three-node JetStream
cluster; while tasks are being submitted and run, the node that leads ASSAY_EVENTS is killed with SIGKILL, the run
goes on on the two others, and the node is started again on its store. Every accepted task ends `completed`, none
is lost, none is duplicated (one task row, one request message, one `started` and one `completed` event, one service
run and one result folder each; no task the client was not given), no submission is refused meanwhile (the gateway
waits out the reconnect and the leader election), and the restarted node catches up on every stream."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import nats.errors

from shared.jetstream.connection import connect
from shared.jetstream.nats_users import ADMIN
from shared.jetstream.streams import KV_STREAM, OBJECT_STREAM
from shared.wire import subjects
from shared.wire.messages import TERMINAL_STATUSES
from tests.support.stack import Stack, stream_leader

MODEL, APP = "cluster-model", 1
TASKS = 80
STREAMS = (subjects.REQUESTS_STREAM, subjects.EVENTS_STREAM, subjects.DLQ_STREAM, KV_STREAM, OBJECT_STREAM)
DEADLINE_S = 240.0  # generous: two cores shared with other test runs


class Submitter(threading.Thread):
    """Submits TASKS analyses one after another, as a client would: a 503 ("try again") is retried."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.accepted: list[str] = []
        self.unavailable = 0  # 503 answers
        self.error: BaseException | None = None

    def run(self) -> None:
        body = {"model_slug": MODEL, "app_number": APP, "analysis_type": "static", "tools": ["ruff"]}
        try:
            with httpx.Client(headers=self.stack.headers, timeout=60) as client:
                while len(self.accepted) < TASKS:
                    answer = client.post(f"{self.stack.gateway_url}/api/analysis/run", json=body)
                    if answer.status_code == 503:
                        self.unavailable += 1
                        time.sleep(0.5)
                        continue
                    assert answer.status_code == 202, answer.text
                    self.accepted.append(answer.json()["task_id"])
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            self.error = error


def mapping(stack: Stack, sql: str) -> dict[str, Any]:
    """The database's answer to `sql` (two columns) as a mapping."""
    with sqlite3.connect(stack.database_file, timeout=30) as db:
        return dict(db.execute(sql).fetchall())


def tasks_in(stack: Stack, statuses: Iterable[str]) -> int:
    found = mapping(stack, "select status, count(*) from tasks group by status")
    return sum(found.get(status, 0) for status in statuses)


def wait_until(
    condition: Callable[[], object], what: str, stack: Stack, timeout_s: float = DEADLINE_S
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout_s} s; logs:\n{stack.log_tail()}")
        time.sleep(0.2)


async def lagging_replicas(stack: Stack) -> dict[str, list[str]]:
    """Per stream, the replicas that are not current (offline or behind the leader), or why that is unknown."""
    nc = await connect(stack.nats.url, "test-admin", stack.creds(ADMIN))
    try:
        lagging = {}
        for name in STREAMS:
            try:
                info = await nc.jetstream().stream_info(name)
            except (nats.errors.Error, TimeoutError) as error:  # a leader still being elected
                lagging[name] = [repr(error)]
                continue
            assert info.cluster is not None
            peers = info.cluster.replicas or []
            behind = [str(peer.name) for peer in peers if not peer.current or peer.offline]
            if behind or len(peers) != 2 or not info.cluster.leader:
                lagging[name] = behind or ["(no leader or missing peer)"]
        return lagging
    finally:
        await nc.close()


async def per_task_counts(stack: Stack, kind: str) -> dict[str, int]:
    """How many `kind` events ASSAY_EVENTS holds for each task."""
    nc = await connect(stack.nats.url, "test-admin", stack.creds(ADMIN))
    try:
        info = await nc.jetstream().stream_info(
            subjects.EVENTS_STREAM, subjects_filter=f"assay.events.*.{kind}"
        )
    finally:
        await nc.close()
    return {subject.split(".")[2]: count for subject, count in (info.state.subjects or {}).items()}


async def requests_stored(stack: Stack) -> int:
    nc = await connect(stack.nats.url, "test-admin", stack.creds(ADMIN))
    try:
        return (await nc.jetstream().stream_info(subjects.REQUESTS_STREAM)).state.messages
    finally:
        await nc.close()


def test_a_run_completes_with_nothing_lost_or_duplicated_when_a_cluster_node_is_killed(
    tmp_path: Path,
) -> None:
    backend = tmp_path / "apps" / MODEL / f"app{APP}" / "backend"
    backend.mkdir(parents=True)
    (backend / "app.py").write_text(
        "import os\n\n\ndef handler(value):\n    return os.path.join('data', value)\n"
    )
    stack = Stack(
        tmp_path / "stack", apps_dir=tmp_path / "apps", analyzers={"static": 1}, nats_nodes=3, orchestrators=2
    )
    started = time.monotonic()
    stack.start()
    try:
        victim = asyncio.run(stream_leader(stack, subjects.EVENTS_STREAM))
        submitter = Submitter(stack)
        submitter.start()
        wait_until(
            lambda: len(submitter.accepted) >= TASKS // 4 or submitter.error, "a quarter submitted", stack
        )
        done_before = tasks_in(stack, ["completed"])
        killed_at = len(submitter.accepted)
        stack.kill(victim)  # SIGKILL: no goodbye to the cluster or the clients
        # The run goes on on two nodes: more tasks accepted and finished before the node comes back.
        wait_until(
            lambda: len(submitter.accepted) >= min(TASKS, killed_at + TASKS // 4) or submitter.error,
            "tasks accepted with one node down",
            stack,
        )
        wait_until(
            lambda: tasks_in(stack, ["completed"]) >= min(TASKS, done_before + 5),
            "tasks completed with one node down",
            stack,
        )
        stack.start_nats(victim)
        submitter.join(DEADLINE_S)
        assert submitter.error is None, submitter.error
        accepted = set(submitter.accepted)
        wait_until(
            lambda: tasks_in(stack, TERMINAL_STATUSES) >= len(accepted),
            "every task terminal",
            stack,
        )
        wait_until(lambda: not asyncio.run(lagging_replicas(stack)), "the restarted node caught up", stack)
        started_events = asyncio.run(per_task_counts(stack, "started"))
        completed_events = asyncio.run(per_task_counts(stack, "completed"))
        stored_requests = asyncio.run(requests_stored(stack))
    finally:
        stack.stop()
    elapsed = time.monotonic() - started

    statuses = mapping(stack, "select task_id, status from tasks")
    runs = mapping(stack, "select task_id, count(*) from service_runs group by task_id")
    terminal = [task for task, status in statuses.items() if status in TERMINAL_STATUSES]
    folders = [
        path.name
        for path in (stack.results_dir / MODEL / f"app{APP}").iterdir()
        if not path.name.startswith(".")
    ]
    folders_per_task = {
        task: sum(task.removeprefix("task_") in name for name in folders) for task in accepted
    }
    lost = accepted - set(statuses)
    unknown = set(statuses) - accepted  # a task the client never got an id for: a duplicate submission
    print(
        f"\ncluster failover: {len(accepted)} submitted, {len(terminal)} terminal, {len(lost)} lost, "
        f"{len(unknown)} unknown, {submitter.unavailable} answered 503, killed {victim} after {killed_at}, "
        f"{elapsed:.0f} s"
    )
    assert len(accepted) == TASKS
    # The gateway waits out the node's death (reconnect, leader election) instead of refusing a submission.
    assert submitter.unavailable == 0
    assert lost == set() and unknown == set()
    assert set(statuses.values()) == {"completed"}, {t: s for t, s in statuses.items() if s != "completed"}
    assert stored_requests == TASKS  # each publish retried under one Nats-Msg-Id is stored once
    assert started_events == dict.fromkeys(accepted, 1)
    assert completed_events == dict.fromkeys(accepted, 1)
    assert runs == dict.fromkeys(accepted, 1)
    assert folders_per_task == dict.fromkeys(accepted, 1) and len(folders) == TASKS
