"""The fault suite: the real stack as separate processes, tasks submitted at a steady pace, and one fault dealt
mid-run — `kill -9` of each service (started again), a nats-server restart, an analyzer stopped for a while, the
orchestrator in a crash loop. On SQLite and on PostgreSQL, one stack per database that the scenarios break in turn.
Each scenario prints its row (scenario, submitted, terminal, lost, duplicated, DB≢files) and asserts the zeros:
every accepted task ends, none is lost or duplicated, the database and the folders agree.

Bounded in `make test`'s stack tier (80 tasks per scenario, a 10 s outage, both databases, the crash loop); `make
chaos` runs 500 tasks and a 30 s outage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.faults.crash_loop import MARGIN_S, MAX_DELIVER, run_crash_loop
from tests.support.faults.plugin import scale_of
from tests.support.faults.scenarios import (
    KILLS,
    NATS_RESTART,
    Fault,
    FaultStack,
    Scale,
    analyzer_outage,
    cluster_node_down,
    fault_stack,
    run_scenario,
)
from tests.support.faults.verdict import Verdict
from tests.support.postgres import fresh_postgres_database

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module", params=["SQLite", "PostgreSQL"])
def database(request: pytest.FixtureRequest) -> str:
    """Which database the stacks of this round use."""
    label: str = request.param
    if label not in request.config.getoption("--fault-databases").split(","):
        pytest.skip(f"the {label} round was not asked for (--fault-databases SQLite,PostgreSQL runs both)")
    return label


@contextmanager
def fresh_database(label: str, folder: Path) -> Iterator[str]:
    """The URL of a database of its own for one stack: a SQLite file, or a new database on the test PostgreSQL
    server (skipped with the reason when none answers)."""
    if label == "SQLite":
        yield f"sqlite+aiosqlite:///{folder / 'assay.db'}"
        return
    with fresh_postgres_database("assay_faults") as url:
        yield url


@contextmanager
def started(root: Path, label: str, scale: Scale, nats_nodes: int = 1) -> Iterator[FaultStack]:
    with fresh_database(label, root) as url:
        stack = fault_stack(root, url, scale.ack_wait_s, nats_nodes=nats_nodes)
        stack.start()
        try:
            yield FaultStack(stack, label if nats_nodes == 1 else f"{label}, {nats_nodes} nodes")
        finally:
            stack.stop()


@pytest.fixture(scope="module")
def shared_stack(
    tmp_path_factory: pytest.TempPathFactory, database: str, request: pytest.FixtureRequest
) -> Iterator[FaultStack]:
    """One stack per database that the scenarios break one after another (starting one is most of a
    scenario's cost)."""
    with started(tmp_path_factory.mktemp("faults"), database, scale_of(request.config)) as faulty:
        yield faulty


@pytest.fixture(scope="module")
def cluster_stack(
    tmp_path_factory: pytest.TempPathFactory, database: str, request: pytest.FixtureRequest
) -> Iterator[FaultStack]:
    """The same on a three-node JetStream cluster (streams with 3 replicas, services given every node's URL),
    with a database of its own."""
    scale = scale_of(request.config)
    with started(tmp_path_factory.mktemp("cluster"), database, scale, nats_nodes=3) as faulty:
        yield faulty


@pytest.fixture
def faulty(shared_stack: FaultStack) -> FaultStack:
    """The shared stack, whole: what an earlier, failed scenario left dead is started again."""
    shared_stack.revive()
    return shared_stack


def assert_nothing_lost(verdict: Verdict, scale: Scale, asked: int | None = None) -> None:
    asked = scale.tasks if asked is None else asked
    assert verdict.submitted == asked, f"{verdict.submitted} of {asked} tasks accepted"
    assert not verdict.lost, verdict.details()
    assert verdict.terminal == verdict.submitted, verdict.details()
    assert not verdict.duplicated, verdict.details()
    assert not verdict.disagreements, verdict.details()


def survives(faulty: FaultStack, fault: Fault, scale: Scale, table: Callable[[Verdict], None]) -> None:
    """Run the scenario, print its row, and assert the zeros: every task ended, none failed, lost or doubled, the
    database and the folders in agreement. A crash or a restart is an outage: it costs time, never a task."""
    verdict = run_scenario(faulty, fault, scale)
    table(verdict)
    assert_nothing_lost(verdict, scale)
    assert not verdict.failed, f"{len(verdict.failed)} tasks failed: {set(verdict.failed.values())}"


CRASHES = [*KILLS, NATS_RESTART]


@pytest.mark.parametrize("fault", CRASHES, ids=lambda fault: fault.name.replace(" ", "-"))
def test_a_crash_mid_run_fails_loses_and_duplicates_no_task(
    faulty: FaultStack, fault: Fault, fault_scale: Scale, fault_table: Callable[[Verdict], None]
) -> None:
    survives(faulty, fault, fault_scale, fault_table)


def test_a_cluster_node_killed_mid_run_fails_loses_and_duplicates_no_task(
    cluster_stack: FaultStack, fault_scale: Scale, fault_table: Callable[[Verdict], None]
) -> None:
    survives(cluster_stack, cluster_node_down(fault_scale), fault_scale, fault_table)


def test_an_analyzer_outage_mid_run_fails_no_task(
    faulty: FaultStack, fault_scale: Scale, fault_table: Callable[[Verdict], None]
) -> None:
    survives(faulty, analyzer_outage(fault_scale), fault_scale, fault_table)


def test_an_orchestrator_crash_loop_dead_letters_its_request_and_fails_its_task(
    faulty: FaultStack,
    fault_scale: Scale,
    fault_table: Callable[[Verdict], None],
    request: pytest.FixtureRequest,
) -> None:
    if not request.config.getoption("fault_crash_loop"):
        pytest.skip(
            "left out by --no-fault-crash-loop; tests/test_dead_letters.py covers the dead letter alone"
        )
    verdict, loop = run_crash_loop(faulty, fault_scale)
    fault_table(verdict)
    assert loop.kills >= MAX_DELIVER - 1, f"the request started only {loop.kills} times"
    assert loop.row is not None and loop.row.status == "failed", loop.row
    assert loop.dead_letters, f"no dead letter names {loop.task_id} on ASSAY_DLQ"
    assert loop.dead_letters[0].deliveries >= MAX_DELIVER
    limit_s = MAX_DELIVER * fault_scale.ack_wait_s + MARGIN_S
    assert loop.ended_after_s is not None and loop.ended_after_s <= limit_s
    assert_nothing_lost(verdict, fault_scale, asked=fault_scale.tasks + 1)
    others = {task: reason for task, reason in verdict.failed.items() if task != loop.task_id}
    assert not others, f"ordinary tasks failed beside the crashing one: {others}"
