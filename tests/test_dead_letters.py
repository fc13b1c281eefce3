"""Dead letters for every exhausted message, on the real stack: an orchestrator killed (-9) after each start of one
request never settles it, so no handler can give it up; JetStream's max-deliveries advisory does, and the request
lands in ASSAY_DLQ with its reason and delivery count, its task `failed` with that reason within
max_deliver × ack_wait plus a few seconds. `assay dlq list|show|replay` then work end to end."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from services.cli.roster import ServiceSpec
from shared.jetstream.connection import connect
from shared.jetstream.nats_users import ADMIN, ORCHESTRATOR
from shared.wire import subjects
from shared.wire.messages import decode_request
from tests.support.faults.analyzer import STEADY_MODEL
from tests.support.faults.scenarios import fault_apps
from tests.support.stack import Stack, run_assay

ACK_WAIT_S, MAX_DELIVER = 4, 3
SLACK_S = 8.0  # "a few seconds": the last fetch that makes the server notice, the persister's turn, the poll
ORCHESTRATOR_SPEC = ServiceSpec(
    "orchestrator", "services.orchestrator", nats_user=ORCHESTRATOR, analyzer_token=True
)


def deliveries_made(stack: Stack) -> int:
    """How many deliveries the normal-priority orchestrator durable has made (each redelivery counts)."""

    async def ask() -> int:
        admin = await connect(stack.nats.url, "dlq-test", stack.creds(ADMIN))
        try:
            info = await admin.jetstream().consumer_info(
                subjects.REQUESTS_STREAM, subjects.orchestrator_durable("normal")
            )
            return info.delivered.consumer_seq or 0
        finally:
            await admin.close()

    return asyncio.run(ask())


def wait_for(probe: Any, timeout_s: float, what: str, stack: Stack) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise TimeoutError(f"{what} after {timeout_s} s; logs:\n{stack.log_tail()}")


def assay_json(stack: Stack, *args: str) -> Any:
    done = run_assay(stack, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_crash_looping_orchestrator_dead_letters_the_request_and_fails_its_task(tmp_path: Path) -> None:
    # The paced stand-in of the static analyzer: a run of STEADY_RUN_S is still in flight when the orchestrator
    # that took it is killed (a quick real tool could finish first and the request would settle), costs no CPU,
    # and the replay's run ends.
    stack = Stack(
        tmp_path / "stack",
        apps_dir=fault_apps(tmp_path),
        analyzer_modules={"static": "tests.support.faults.analyzer"},
        extra_env={"ASSAY_ACK_WAIT_S": str(ACK_WAIT_S), "ASSAY_MAX_DELIVER": str(MAX_DELIVER)},
    )
    stack.start()
    try:
        stack.kill("orchestrator")
        task_id = stack.submit(model_slug=STEADY_MODEL, app_number=1, analysis_type="static", tools=["ruff"])
        first_delivery = 0.0
        for delivery in range(1, MAX_DELIVER + 1):  # start, let it take the request, kill -9
            stack.spawn(ORCHESTRATOR_SPEC)
            wait_for(
                lambda n=delivery: deliveries_made(stack) >= n, 60, f"delivery {delivery} not made", stack
            )
            stack.kill("orchestrator")
            first_delivery = first_delivery or time.monotonic()
        stack.spawn(ORCHESTRATOR_SPEC)  # fetching again, as a restarted replica does
        limit_s = MAX_DELIVER * ACK_WAIT_S + SLACK_S
        task = wait_for(
            lambda: (found := stack.task(task_id))["status"] == "failed" and found,
            limit_s - (time.monotonic() - first_delivery),
            f"task {task_id} not failed within max_deliver × ack_wait + {SLACK_S:g} s",
            stack,
        )
        took_s = time.monotonic() - first_delivery
        print(f"\ncrash loop: task failed {took_s:.1f} s after its first delivery (limit {limit_s:g} s)")
        reason = (
            f"delivery limit reached: orchestrator-normal was given it {MAX_DELIVER} times and never settled it "
            "(the consumer stopped, crashed or hung on it each time)"
        )
        assert task["status_reason"] == reason

        listed = assay_json(stack, "dlq", "list")
        assert listed["next_after"] is None
        [letter] = listed["dead_letters"]
        assert letter["task_id"] == task_id and letter["reason"] == reason
        assert letter["deliveries"] == MAX_DELIVER and letter["consumer"] == "orchestrator-normal"
        assert letter["stream"] == subjects.REQUESTS_STREAM and letter["subject"] == "assay.requests.normal"
        table = run_assay(stack, "dlq", "list")
        assert table.returncode == 0 and task_id in table.stdout and "1 dead letter\n" in table.stdout

        shown = assay_json(stack, "dlq", "show", str(letter["id"]))
        dead = decode_request(shown["payload"].encode())  # the request as it was published
        assert dead.task.id == task_id and dead.task.analysis_type == "static"

        replayed = assay_json(stack, "dlq", "replay", str(letter["id"]))
        assert replayed["replayed_from"] == letter["id"] and replayed["original_task_id"] == task_id
        assert replayed["task_id"] != task_id and replayed["analysis_type"] == "static"
        again = stack.wait_terminal(replayed["task_id"], timeout_s=120)
        assert again["status"] == "completed", again
        assert stack.task(task_id)["status"] == "failed"  # the dead task stays as it ended
        missing = run_assay(stack, "dlq", "show", "999")
        assert missing.returncode == 1 and "no dead letter 999" in missing.stderr
    finally:
        stack.stop()
