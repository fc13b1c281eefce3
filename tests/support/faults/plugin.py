"""The fault suite's pytest side: its scale options, and the table of verdicts printed at the end of the session.

`pytest` (and `make test`) runs the bounded suite; `make chaos` runs the long one by passing the options:
`--fault-tasks` (tasks per scenario), `--fault-outage-s` (how long the analyzer stays down), `--fault-databases`
(both, SQLite and PostgreSQL, unless told otherwise), `--fault-crash-loop` (only in `make chaos`).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.faults.scenarios import Scale
from tests.support.faults.verdict import Verdict, header

VERDICTS = pytest.StashKey[list[Verdict]]()
BOUNDED = Scale(tasks=80, rate_per_s=20.0, outage_s=10.0)
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
        "--fault-crash-loop",
        action="store_true",
        help="run the orchestrator crash loop too (30 s of ack waits; make chaos does)",
    )
    group.addoption(
        "--fault-databases",
        default=",".join(BOUNDED_DATABASES),
        help="the databases whose stacks the scenarios break (SQLite,PostgreSQL)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[VERDICTS] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    verdicts = config.stash.get(VERDICTS, [])
    if verdicts:
        terminalreporter.write_sep("=", "fault suite")
        for line in header().splitlines():
            terminalreporter.write_line(line)
        for verdict in verdicts:
            terminalreporter.write_line(verdict.row())


@pytest.fixture
def fault_scale(request: pytest.FixtureRequest) -> Scale:
    """The scale the options ask for (bounded by default)."""
    option = request.config.getoption
    return Scale(
        tasks=option("--fault-tasks"), rate_per_s=option("--fault-rate"), outage_s=option("--fault-outage-s")
    )


@pytest.fixture
def fault_table(request: pytest.FixtureRequest) -> Callable[[Verdict], None]:
    """Records a verdict: printed now (seen with -s or on failure) and in the table at the end of the session."""

    def record(verdict: Verdict) -> None:
        print(f"{header()}\n{verdict.row()}")
        request.config.stash[VERDICTS].append(verdict)

    return record
