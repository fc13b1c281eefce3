"""Every module of the services and the shared package imports: start-up imports are kept lazy where a process does
not need them (Alembic only where it migrates), and a module imported late must still import, here, in a fresh
interpreter, instead of only when a rare path first reaches it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_the_gateway_and_the_orchestrator_start_without_importing_alembic() -> None:
    # Neither migrates: Alembic (about 80 ms of CPU per start) is imported by what migrates, when it does.
    script = (
        "import sys, services.gateway.__main__, services.orchestrator.__main__\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]", done.stdout
