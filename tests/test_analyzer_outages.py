"""Analyzer outages on the real stack fail nothing: the only static analyzer killed for longer than
max_deliver × ack_wait and started again, and a rolling restart (SIGTERM) of two static replicas while they run.
Every task completes, none fails, nothing is dead-lettered."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from services.cli.roster import ServiceSpec
from shared.jetstream.connection import connect
from shared.jetstream.nats_users import ADMIN
from shared.wire import subjects
from tests.support.faults.analyzer import STEADY_MODEL, STEADY_RUN_S
from tests.support.faults.scenarios import fault_apps
from tests.support.stack import Stack

ACK_WAIT_S, MAX_DELIVER = 2, 3
OUTAGE_S = 12.0  # longer than max_deliver × ack_wait: the held requests must not use their deliveries up


def dead_letters(stack: Stack) -> int:
    async def count() -> int:
        admin = await connect(stack.nats.url, "outage-test", stack.creds(ADMIN))
        try:
            info = await admin.jetstream().stream_info(subjects.DLQ_STREAM)
            return info.state.messages
        finally:
            await admin.close()

    return asyncio.run(count())


def restart_static(stack: Stack, index: int) -> None:
    port = stack.analyzer_ports["static"][index]
    module = stack.analyzer_modules["static"]
    spec = ServiceSpec(f"static-{index}", module, ("--port", str(port)), analyzer_token=True)
    stack.spawn(spec)
    stack.wait_listening(f"static-{index}", port, timeout_s=60)


def submit_steady(stack: Stack, count: int) -> list[str]:
    """`count` tasks whose run lasts STEADY_RUN_S on the paced stand-in of the static analyzer (the real analyzer
    server, drain and hand-back; a tool of known length), so that a stop signal finds them running."""
    return [
        stack.submit(model_slug=STEADY_MODEL, app_number=1, analysis_type="static", tools=["ruff"])
        for _ in range(count)
    ]


def wait_running(stack: Stack, task_ids: list[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(stack.task(task_id)["status"] == "running" for task_id in task_ids):
        assert time.monotonic() < deadline, f"no task running after {timeout_s} s:\n{stack.log_tail()}"
        time.sleep(0.05)


def outcomes(stack: Stack, task_ids: list[str]) -> dict[str, list[str]]:
    ended: dict[str, list[str]] = {}
    for task_id in task_ids:
        task = stack.wait_terminal(task_id, timeout_s=180)
        ended.setdefault(task["status"], []).append(f"{task_id}: {task['status_reason']}")
    return ended


def test_the_only_static_analyzer_down_longer_than_the_deliveries_fails_nothing(tmp_path: Path) -> None:
    env = {
        "ASSAY_ACK_WAIT_S": str(ACK_WAIT_S),
        "ASSAY_MAX_DELIVER": str(MAX_DELIVER),
        "ASSAY_ANALYZER_OUTAGE_S": "120",
    }
    # the paced stand-in of the static analyzer: a real bandit run now ends before the kill could find it running
    stack = Stack(
        tmp_path / "stack",
        apps_dir=fault_apps(tmp_path),
        analyzer_modules={"static": "tests.support.faults.analyzer"},
        extra_env=env,
    )
    stack.start()
    try:
        before = submit_steady(stack, 3)
        wait_running(stack, before)
        stack.kill("static-0")  # a crash, mid-run for them
        during = submit_steady(stack, 3)
        time.sleep(OUTAGE_S)  # the outage itself: its length is what this test is about
        restart_static(stack, 0)
        ended = outcomes(stack, before + during)
        letters = dead_letters(stack)
    finally:
        stack.stop()
    counts = {status: len(tasks) for status, tasks in ended.items()}
    print(f"\nstatic analyzer down {OUTAGE_S:g} s: {counts} of {len(before + during)} tasks")
    assert list(ended) == ["completed"], ended
    assert letters == 0


def test_a_rolling_restart_of_two_static_replicas_fails_nothing(tmp_path: Path) -> None:
    env = {"ASSAY_ANALYZER_GRACE_S": "0.5", "ASSAY_ANALYZER_OUTAGE_S": "120"}
    assert STEADY_RUN_S > 2 * 0.5  # runs outlast the grace: a stop hands them back
    stack = Stack(
        tmp_path / "stack",
        apps_dir=fault_apps(tmp_path),
        analyzers={"static": 2},
        analyzer_modules={"static": "tests.support.faults.analyzer"},
        extra_env=env,
    )
    stack.start()
    try:
        task_ids: list[str] = []
        for index in (0, 1):  # one replica after the other, each asked to stop while tasks run
            task_ids += submit_steady(stack, 4)
            wait_running(stack, task_ids[-4:])
            process = stack.processes[f"static-{index}"]
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
            restart_static(stack, index)
        ended = outcomes(stack, task_ids)
        letters = dead_letters(stack)
        logs = "".join(path.read_text() for path in stack.logs.glob("static-*.log"))
    finally:
        stack.stop()
    handed_back = logs.count("analysis handed back")
    counts = {status: len(tasks) for status, tasks in ended.items()}
    print(f"\nrolling restart: {counts} of {len(task_ids)} tasks, {handed_back} runs handed back")
    assert list(ended) == ["completed"], ended
    assert letters == 0
