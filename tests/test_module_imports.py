"""Every module of the services and the shared package imports: start-up imports are kept lazy where a process does
not need them (Alembic only where it migrates), and a module imported late must still import, here, in a fresh
interpreter, instead of only when a rare path first reaches it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("shared", "services")


def module_names() -> list[str]:
    """Every importable module of PACKAGES: not a `__main__` (it runs its service), not Alembic's scripts (it loads
    the migrations folder by path, in tests/test_migrations.py)."""
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "node_modules" in parts or "migrations" in parts or parts[-1] == "__main__":
                continue
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_of_the_services_and_shared_imports_in_a_fresh_interpreter() -> None:
    names = module_names()
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"

    done = subprocess.run(
        [sys.executable, "-c", script, *names], cwd=ROOT, capture_output=True, text=True, timeout=300
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert len(names) > 250, f"only {len(names)} modules found under {PACKAGES}"
    assert "shared.store.database" in names and "services.gateway.idempotency" in names


def imported_at_start(entry_point: str, package: str) -> list[str]:
    """The modules of `package` that importing `entry_point` (a service's `__main__`) loads, in a fresh interpreter."""
    script = (
        f"import sys, {entry_point}\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] == {package!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return list(ast.literal_eval(done.stdout))


@pytest.mark.parametrize(
    "entry_point",
    [
        "services.gateway.__main__",
        "services.orchestrator.__main__",
        "services.persister.__main__",
        "services.cli.main",
    ],
)
def test_a_service_starts_without_importing_alembic(entry_point: str) -> None:
    # Only a migration needs Alembic (about 80 ms of CPU per start): it is imported when one runs.
    assert imported_at_start(entry_point, "alembic") == []


@pytest.mark.parametrize(
    "entry_point",
    [
        "services.orchestrator.__main__",
        "services.analyzers.static.__main__",
        "services.analyzers.dynamic.__main__",
    ],
)
def test_a_service_without_a_database_starts_without_importing_sqlalchemy(entry_point: str) -> None:
    # A tenth of a second of CPU per start, for a process that never opens the database.
    assert imported_at_start(entry_point, "sqlalchemy") == []
