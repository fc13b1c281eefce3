"""Every module of the services and the shared package imports: start-up imports are kept lazy where a process does
not need them (Alembic only where it migrates), and a module imported late must still import, here, in a fresh
interpreter, instead of only when a rare path first reaches it: every module, and every import written inside a
function (which importing its module never runs), found by reading the sources."""

from __future__ import annotations

import ast
import json
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


def source_files() -> list[Path]:
    return [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "node_modules" not in path.parts
    ]


def imports_in_functions(root: Path, files: list[Path]) -> dict[str, tuple[str, ...]]:
    """Each module that an import inside a function body of `files` names → the names it takes from it (() for
    `import a.b`): importing their modules never runs these, so only a call would meet a misspelt one."""
    found: dict[str, set[str]] = {}
    for path in files:
        package = ".".join(path.relative_to(root).parts[:-1])
        for function in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        found.setdefault(alias.name, set())
                elif isinstance(node, ast.ImportFrom):
                    base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                    module = ".".join(part for part in (base, node.module or "") if part)
                    found.setdefault(module, set()).update(alias.name for alias in node.names)
    return {module: tuple(sorted(names)) for module, names in found.items()}


# Each module, then each name from it: an attribute, or else a submodule (`from alembic import command`).
IMPORT_TARGETS = """import importlib, json, sys
for module, names in json.loads(sys.argv[1]).items():
    try:
        imported = importlib.import_module(module)
        for name in names:
            if not hasattr(imported, name):
                importlib.import_module(f"{module}.{name}")
    except Exception as error:
        print(f"{module} {names}: {error!r}")
"""


def failing_imports(targets: dict[str, tuple[str, ...]]) -> str:
    """The targets that do not import in a fresh interpreter of this project, one line each."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_TARGETS, json.dumps(targets)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_every_import_inside_a_function_imports_in_a_fresh_interpreter() -> None:
    targets = imports_in_functions(ROOT, source_files())

    assert failing_imports(targets) == ""
    # The lazy imports this scan exists for are found (else it reads nothing).
    assert "command" in targets["alembic"] and "Config" in targets["alembic.config"], sorted(targets)
    assert "make_url" in targets["sqlalchemy.engine"]


def test_the_scan_meets_a_misspelt_import_inside_a_function_that_importing_its_module_does_not(
    tmp_path: Path,
) -> None:
    (tmp_path / "lazy").mkdir()
    module = tmp_path / "lazy" / "store.py"
    module.write_text(
        "def migrate():\n    from alembic import commands\n    from .migrations import upgrade\n"
    )
    imported = subprocess.run([sys.executable, "-c", "import lazy.store"], cwd=tmp_path, capture_output=True)

    targets = imports_in_functions(tmp_path, [module])

    assert imported.returncode == 0
    assert targets == {"alembic": ("commands",), "lazy.migrations": ("upgrade",)}
    failed = failing_imports(targets)
    assert "alembic ['commands']: ModuleNotFoundError" in failed and "lazy.migrations" in failed


def imported_at_start(entry_point: str, package: str) -> list[str]:
    """The modules of `package` that importing `entry_point` (a service's `__main__`) loads, in a fresh interpreter;
    a `__main__` that runs when imported (the CLI's) runs with `--help`."""
    script = (
        "import contextlib, importlib, sys\n"
        "sys.argv = ['assay', '--help']\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(sys.stderr):\n"
        f"    importlib.import_module({entry_point!r})\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] == {package!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert entry_point != "services.cli.__main__" or "usage" in done.stderr.lower(), done.stderr[-3000:]
    return list(ast.literal_eval(done.stdout))


@pytest.mark.parametrize(
    "entry_point",
    [
        "services.gateway.__main__",
        "services.orchestrator.__main__",
        "services.persister.__main__",
        "services.cli.main",
        "services.cli.__main__",
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
        "services.analyzers.ai.__main__",
        "services.analyzers.performance.__main__",
    ],
)
def test_a_service_without_a_database_starts_without_importing_sqlalchemy(entry_point: str) -> None:
    # A tenth of a second of CPU per start, for a process that never opens the database.
    assert imported_at_start(entry_point, "sqlalchemy") == []
