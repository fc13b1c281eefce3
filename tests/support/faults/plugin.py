"""The fault suite's pytest side: its scale options, and the table of verdicts printed at the end of the session.

`pytest` (and `make test`, in its stack tier) runs the bounded suite, the crash loop included, on both databases;
`make chaos` runs the long one by passing the options: `--fault-tasks` (tasks per scenario), `--fault-outage-s` (how
long the analyzer stays down), `--fault-ack-wait-s` (the stacks' ASSAY_ACK_WAIT_S), `--fault-databases` (both, SQLite
and PostgreSQL, unless told otherwise). `--no-fault-crash-loop` leaves the crash loop out (max_deliver ack waits).

Under pytest-xdist each worker runs its scenarios and sends its rows to the controller, which prints the one table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.faults.scenarios import Scale
from tests.support.faults.verdict import Verdict, header

ROWS = pytest.StashKey[list[str]]()  # the table's rows, in the order the scenarios ended
WORKER_ROWS = "fault_rows"  # the key under which an xdist worker hands its rows to the controller
BOUNDED = Scale(tasks=80, rate_per_s=20.0, outage_s=10.0, ack_wait_s=4.0)
# Both rounds, also in `make test`: the PostgreSQL one costs about 90 s of CI's 20 minutes.
BOUNDED_DATABASES = ("SQLite", "PostgreSQL")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("faults", "the fault suite (tests/test_faults.py)")
    group.addoption("--fault-tasks", type=int, default=BOUNDED.tasks, help="tasks per fault scenario")
    group.addoption(
        "--fault-outage-s", type=float, default=BOUNDED.outage_s, help="how long the analyzer outage lasts"
    )
    group.addoption("--fault-rate", type=float, default=BOUNDED.rate_per_s, help="tasks submitted per second")
    group.addoption(
        "--fault-ack-wait-s", type=float, default=BOUNDED.ack_wait_s, help="the stacks' ASSAY_ACK_WAIT_S"
    )
    group.addoption(
        "--no-fault-crash-loop",
        dest="fault_crash_loop",
        action="store_false",
        help="leave out the orchestrator crash loop (max_deliver ack waits)",
    )
    group.addoption(
        "--fault-databases",
        default=",".join(BOUNDED_DATABASES),
        help="the databases whose stacks the scenarios break (SQLite,PostgreSQL)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[ROWS] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)  # set on an xdist worker only
    if output is not None:
        output[WORKER_ROWS] = session.config.stash[ROWS]


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown without it
def pytest_testnodedown(node: Any, error: object) -> None:
    """An xdist worker ended: its rows join the controller's table."""
    node.config.stash[ROWS].extend(getattr(node, "workeroutput", {}).get(WORKER_ROWS, []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    rows = config.stash.get(ROWS, [])
    if rows:
        terminalreporter.write_sep("=", "fault suite")
        for line in [*header().splitlines(), *rows]:
            terminalreporter.write_line(line)


def scale_of(config: pytest.Config) -> Scale:
    """The scale the options ask for (bounded by default)."""
    option = config.getoption
    return Scale(
        tasks=option("--fault-tasks"),
        rate_per_s=option("--fault-rate"),
        outage_s=option("--fault-outage-s"),
        ack_wait_s=option("--fault-ack-wait-s"),
    )


@pytest.fixture
def fault_scale(request: pytest.FixtureRequest) -> Scale:
    """The scale the options ask for (bounded by default)."""
    return scale_of(request.config)


@pytest.fixture
def fault_table(request: pytest.FixtureRequest) -> Callable[[Verdict], None]:
    """Records a verdict: printed now (seen with -s or on failure) and in the table at the end of the session."""

    def record(verdict: Verdict) -> None:
        print(f"{header()}\n{verdict.row()}")
        request.config.stash[ROWS].append(verdict.row())

    return record
