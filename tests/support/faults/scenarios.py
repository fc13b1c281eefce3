"""The fault suite's scenarios: a stack of separate processes, a client submitting tasks at a steady pace, and one
fault dealt while the work is queued and in flight (a `kill -9` and a restart, a nats-server restart, an analyzer
stopped for a while). Then every accepted task is waited for and the run is judged (verdict.py).

The static analyzer is the suite's fast stand-in (tests/support/faults/analyzer.py), so hundreds of tasks take
seconds of work and the faults, not the tools, decide what happens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shared.wire import subjects
from tests.support.faults.analyzer import SLOW_MODEL, STEADY_MODEL
from tests.support.faults.load import Submitter
from tests.support.faults.records import open_count, wait_terminal
from tests.support.faults.verdict import Verdict, audit
from tests.support.stack import Stack, stream_leader

MODEL = "fault"
BODY = {"model_slug": MODEL, "app_number": 1, "analysis_type": "static", "tools": ["ruff"]}
ANALYZER = "static-0"
DOWN_S = 1.0  # how long a killed service stays down before it is started again


@dataclass(frozen=True)
class Scale:
    """How big a run is: tasks per scenario, the pace they are submitted at, how long an analyzer outage lasts, and
    the stacks' ack wait: short, so that work held by a killed process comes back within seconds (the crash loop
    lasts max_deliver of them), long enough that a loaded machine sends its in_progress() in time (every third)."""

    tasks: int
    rate_per_s: float
    outage_s: float
    ack_wait_s: float

    @property
    def wait_s(self) -> float:
        """The longest wait for every task to end once the client is done (generous: a loaded machine)."""
        return 120.0 + self.tasks / 2


@dataclass(frozen=True)
class Fault:
    """One fault: its name in the table, and what it does to a running stack."""

    name: str
    deal: Callable[[Stack, Scale], None]


def fault_apps(root: Path) -> Path:
    """An apps root with the (empty) apps the suite's requests name: the gateway checks that they exist."""
    apps = root / "apps"
    for model in (MODEL, SLOW_MODEL, STEADY_MODEL):
        (apps / model / "app1").mkdir(parents=True, exist_ok=True)
    return apps


@dataclass
class FaultStack:
    """A stack the scenarios run on one after another (faults add up, as they do in production), the label of its
    database, and every task the verdicts so far judged: a new row none of them names is work a retry doubled."""

    stack: Stack
    database: str
    judged: set[str] = field(default_factory=set)

    def revive(self) -> None:
        """Start again whatever a failed scenario left dead, so that the next one starts on a whole stack."""
        for name, process in list(self.stack.processes.items()):
            if process.poll() is not None:
                self.stack.restart(name)
                _wait_up(self.stack, name)


def fault_stack(root: Path, database_url: str, ack_wait_s: float, nats_nodes: int = 1) -> Stack:
    """A stack (not started) on `database_url` with the fast static analyzer and `ack_wait_s`, on one nats-server
    or a cluster."""
    return Stack(
        root / "stack",
        apps_dir=fault_apps(root),
        analyzers={"static": 1},
        analyzer_modules={"static": "tests.support.faults.analyzer"},
        extra_env={"ASSAY_ACK_WAIT_S": f"{ack_wait_s:g}", "ASSAY_DATABASE_URL": database_url},
        nats_nodes=nats_nodes,
    )


def _wait_up(stack: Stack, name: str) -> None:
    if name == "gateway":
        stack.wait_ready(timeout_s=60)
    elif name.startswith("static-"):
        stack.wait_listening(name, stack.analyzer_ports["static"][int(name.split("-")[1])], timeout_s=60)


def kill(name: str, label: str) -> Fault:
    """`kill -9` of process `name`, started again DOWN_S later."""

    def deal(stack: Stack, _scale: Scale) -> None:
        stack.kill(name)
        time.sleep(DOWN_S)
        stack.restart(name)
        _wait_up(stack, name)

    return Fault(f"kill -9 {label}", deal)


def _restart_nats(stack: Stack, _scale: Scale) -> None:
    stack.terminate("nats")
    time.sleep(DOWN_S)
    stack.restart("nats")


def _analyzer_outage(stack: Stack, scale: Scale) -> None:
    stack.terminate(ANALYZER)
    time.sleep(scale.outage_s)
    stack.restart(ANALYZER)
    _wait_up(stack, ANALYZER)


def _cluster_node_down(stack: Stack, scale: Scale) -> None:
    # The node leading ASSAY_EVENTS: losing it costs an election on the stream every task's end goes through.
    victim = asyncio.run(stream_leader(stack, subjects.EVENTS_STREAM))
    stack.kill(victim)
    time.sleep(scale.outage_s)
    stack.restart(victim)


def cluster_node_down(scale: Scale) -> Fault:
    """`kill -9` of one node of three (the ASSAY_EVENTS leader), started again `scale.outage_s` later."""
    return Fault(f"kill -9 cluster node, {scale.outage_s:g} s", _cluster_node_down)


KILLS = [
    kill("gateway", "gateway"),
    kill("orchestrator", "orchestrator"),
    kill("persister", "persister"),
    kill(ANALYZER, "static analyzer"),
    kill("nats", "nats-server"),
]
NATS_RESTART = Fault("nats-server restart", _restart_nats)


def analyzer_outage(scale: Scale) -> Fault:
    return Fault(f"static analyzer down {scale.outage_s:g} s", _analyzer_outage)


def run_scenario(faulty: FaultStack, fault: Fault, scale: Scale) -> Verdict:
    """Submit `scale.tasks` tasks, deal `fault` once a third of them is accepted, wait for all, judge."""
    stack = faulty.stack
    started = time.monotonic()
    submitter = Submitter(stack.gateway_url, stack.headers, BODY, scale.tasks, scale.rate_per_s).start()
    submitter.wait_accepted(max(1, scale.tasks // 3))
    database_url = stack.env["ASSAY_DATABASE_URL"]
    open_at_fault = asyncio.run(open_count(database_url, submitter.accepted()))
    fault.deal(stack, scale)
    submission = submitter.join()
    assert not submission.refused, submission.refused[:5]
    asyncio.run(wait_terminal(database_url, submission.accepted, scale.wait_s))
    verdict = audit(stack, submission.accepted, faulty.judged)
    faulty.judged |= verdict.judged
    verdict.scenario, verdict.database, verdict.asked = fault.name, faulty.database, scale.tasks
    verdict.open_at_fault = open_at_fault
    verdict.seconds = time.monotonic() - started
    return verdict
