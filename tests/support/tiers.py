"""The suite's two tiers, both on real parts: the fast tier (services in-process on a real nats-server and a real
database) and the stack tier (marker `stack`: services as separate processes, the CLI and its supervisor, the fault
suite, clusters, Chromium, bubblewrap). `make test` runs both, each with pytest-xdist; `make test-fast` the first.

A test is put in the stack tier by what it uses, so a new test lands in the right tier without a mark of its own:
the fault suite's `chaos` mark, the bubblewrap skip mark, or a call that reaches (through the test's
fixtures and the tests' own helper functions) one of the parts that start processes: `Stack`, `run_assay`,
`NatsCluster`, the supervisor's `Child`, Chromium's flags. A test may also say `@pytest.mark.stack` itself.

Tests that share a module's (or class's) fixture, a stack started once for them, are one xdist group: under
`--dist loadgroup` they run on one worker, so the fixture is not set up again on each. A parametrized shared
fixture makes a group per value (the fault suite's rounds, SQLite and PostgreSQL, run side by side).
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from services.cli.child import Child
from shared.jetstream.nats_cluster import NatsCluster
from tests.support.apps import needs_bwrap
from tests.support.browser import CHROMIUM_ARGS
from tests.support.stack import Stack, run_assay

STACK = "stack"
STACK_PARTS: tuple[object, ...] = (Stack, run_assay, NatsCluster, Child, CHROMIUM_ARGS)
STACK_MARKS = ("chaos", STACK)
SHARED_SCOPES = ("module", "class", "package")


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """A code object and those nested in it (inner functions, lambdas, comprehensions)."""
    yield code
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _codes(constant)


def _reaches_stack(functions: Iterable[Any]) -> bool:
    """Whether any of `functions`, or a function of the tests' own that they name, names a part of STACK_PARTS."""
    seen: set[int] = set()
    pending = [function for function in functions if isinstance(function, types.FunctionType)]
    while pending:
        function = pending.pop()
        if id(function) in seen:
            continue
        seen.add(id(function))
        for code in _codes(function.__code__):
            for name in code.co_names:
                found = function.__globals__.get(name)
                if any(found is part for part in STACK_PARTS):
                    return True
                wrapped = getattr(found, "__wrapped__", found)  # a fixture's function under its decorator
                if isinstance(wrapped, types.FunctionType) and wrapped.__module__.startswith("tests"):
                    pending.append(wrapped)
    return False


def _fixtures(item: pytest.Item) -> list[Any]:
    """The fixture definitions `item` uses."""
    info = getattr(item, "_fixtureinfo", None)
    return [] if info is None else [d for definitions in info.name2fixturedefs.values() for d in definitions]


def shared_group(item: pytest.Item) -> str | None:
    """The xdist group of the tests that share a module's or class's fixture with `item`, or None."""
    shared = {d.argname for d in _fixtures(item) if d.scope in SHARED_SCOPES}
    if not shared:
        return None
    params = getattr(getattr(item, "callspec", None), "params", {})
    values = [f"{name}={params[name]}" for name in sorted(shared) if name in params]
    return "-".join([item.nodeid.split("::")[0], *values])


def is_stack(item: pytest.Item) -> bool:
    """Whether `item` belongs to the stack tier (see the module's docstring)."""
    if any(item.get_closest_marker(name) for name in STACK_MARKS):
        return True
    if any(mark == needs_bwrap.mark for mark in item.iter_markers("skipif")):
        return True
    if not isinstance(item, pytest.Function):
        return False
    return _reaches_stack([item.function, *(definition.func for definition in _fixtures(item))])


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if is_stack(item) and not item.get_closest_marker(STACK):
            item.add_marker(STACK)
        group = shared_group(item)
        if group and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))
