"""`assay apps import <path> --model M [--app N]`: lay out a repository or a single-file app the way Assay expects
(`<apps root>/<model>/app<N>/{backend,frontend}`), copying its files unchanged, and say what was decided.

The backend is the repository's `backend/`, else a folder named like a server (`server`, `api`, `app`, `src`)
holding Python or Node code, else the repository's root when it holds them; the frontend is `frontend/`, else a
folder named like a client (`client`, `web`, `ui`, `public`, `static`, `www`) with an `index.html` or a
package.json, else the root when it is only a static site. A single `.py`/`.js` file becomes the backend, an
`.html` file the frontend's `index.html`. The copy's `.env` keeps the app's own lines and gets `ASSAY_START` when
the entry file is one no start rule looks for. What was decided, the start rule that will start it and the servers
it will be given are printed (or returned as JSON).
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from services.orchestrator.apps.pins import name_of
from services.orchestrator.apps.services_deps import needs
from services.orchestrator.apps.start_rules import ENTRY_FILES, START_KEY, Installed, choose
from shared.operations.config import Settings
from shared.store.paths import app_dir

LEFT_OUT = (".git", "node_modules", ".venv", "venv", "__pycache__", "*.pyc")  # never the app's code
SKIPPED = shutil.ignore_patterns(*LEFT_OUT)
BACKEND_FOLDERS = ("backend", "server", "api", "app", "src")
FRONTEND_FOLDERS = ("frontend", "client", "web", "ui", "public", "static", "www")
SERVER_MARKS = ("requirements.txt", "Procfile", "Dockerfile", "manage.py", "pyproject.toml")


@dataclass
class Decision:
    """What the import did: where each part came from and why, and what Assay will do with it."""

    target: str
    backend: str | None = None
    frontend: str | None = None
    env: list[str] = field(default_factory=list)
    start_rule: str | None = None
    dependencies: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _is_server(folder: Path) -> bool:
    """Python or Node server code at the top of `folder`."""
    if any((folder / name).is_file() for name in SERVER_MARKS) or any(folder.glob("*.py")):
        return True
    return (folder / "package.json").is_file() and not (folder / "index.html").is_file()


def _is_site(folder: Path) -> bool:
    return (folder / "index.html").is_file() or (folder / "package.json").is_file()


def _parts(source: Path) -> tuple[tuple[Path, str] | None, tuple[Path, str] | None]:
    """(backend folder, why) and (frontend folder, why) of a repository, either None."""
    backend = next(
        ((source / name, f"the {name}/ folder") for name in BACKEND_FOLDERS if _is_server(source / name)),
        None,
    )
    frontend = next(
        ((source / name, f"the {name}/ folder") for name in FRONTEND_FOLDERS if _is_site(source / name)), None
    )
    if backend is None and _is_server(source):
        backend = (source, "the repository's root (server code at its top)")
    if backend is None and frontend is None and (source / "index.html").is_file():
        frontend = (source, "the repository's root (a static site)")
    return backend, frontend


def _copy_single(source: Path, target: Path, decision: Decision) -> None:
    if source.suffix == ".html":
        (target / "frontend").mkdir(parents=True)
        shutil.copyfile(source, target / "frontend" / "index.html")
        decision.frontend = f"{source.name} → frontend/index.html (a single page)"
        return
    (target / "backend").mkdir(parents=True)
    shutil.copyfile(source, target / "backend" / source.name)
    decision.backend = f"{source.name} → backend/{source.name} (a single-file app)"


def _write_env(own: Path | None, target: Path, decision: Decision) -> None:
    """The copy's .env: the app's own lines (`own`), and ASSAY_START where the entry file is one no rule looks
    for."""
    lines = own.read_text(errors="replace").splitlines() if own and own.is_file() else []
    backend = target / "backend"
    entries = sorted(backend.glob("*.py")) if backend.is_dir() else []
    mains = [path for path in entries if "__main__" in path.read_text(errors="replace")]
    known = any((backend / name).is_file() for name in ENTRY_FILES)
    if len(mains) == 1 and not known and not any(line.startswith(f"{START_KEY}=") for line in lines):
        added = f"{START_KEY}=python {mains[0].name}"
        lines.append(added)
        decision.env.append(f"{added} ({mains[0].name} starts itself; no start rule looks for that name)")
    if lines:
        (target / ".env").write_text("\n".join(lines) + "\n")


def import_app(source: Path, target: Path) -> Decision:
    """Lay out `source` (a folder or a single file) at `target`, which must not exist yet."""
    if target.exists():
        raise FileExistsError(f"{target} exists already: choose another --app number")
    decision = Decision(target=str(target))
    if source.is_file():
        _copy_single(source, target, decision)
    elif (source / "backend").is_dir() or (source / "frontend").is_dir():
        shutil.copytree(source, target, ignore=SKIPPED)
        decision.backend = "backend/ as it is" if (source / "backend").is_dir() else None
        decision.frontend = "frontend/ as it is" if (source / "frontend").is_dir() else None
    else:
        backend, frontend = _parts(source)
        if backend is None and frontend is None:
            raise ValueError(f"{source}: no server code nor index.html found to import")
        target.mkdir(parents=True)
        if frontend:
            shutil.copytree(frontend[0], target / "frontend", ignore=SKIPPED)
            decision.frontend = f"{frontend[1]} → frontend/"
        if backend:
            # a frontend folder inside the backend's (the root) goes to frontend/ only
            inner = [frontend[0].name] if frontend and frontend[0].parent == backend[0] else []
            skipped = shutil.ignore_patterns(*LEFT_OUT, *inner)
            shutil.copytree(backend[0], target / "backend", ignore=skipped)
            decision.backend = f"{backend[1]} → backend/"
        for name in (
            "docker-compose.yml",
            "docker-compose.yaml",
            "compose.yml",
            "compose.yaml",
            "runtime.txt",
        ):
            if (source / name).is_file() and backend and backend[0] != source:
                shutil.copyfile(source / name, target / name)
                decision.notes.append(f"{name} kept at the app's root")
    _write_env(source / ".env" if source.is_dir() else None, target, decision)
    _judge(target, decision)
    return decision


def _judge(target: Path, decision: Decision) -> None:
    """What Assay will do with the laid-out app: its start rule and the servers it needs."""
    requirements = target / "backend" / "requirements.txt"
    listed = requirements.read_text(errors="replace").splitlines() if requirements.is_file() else []
    installed = Installed(
        packages=frozenset(filter(None, map(name_of, listed))), node=shutil.which("node") is not None
    )
    start = choose(target, installed)
    decision.start_rule = f"{start.rule}: {start.why}" if start else "none fits: give ASSAY_START in .env"
    decision.dependencies = [f"{need.kind} ({need.evidence})" for need in needs(target)]


def run_import(settings: Settings, args: argparse.Namespace) -> int:
    """The command: lay the app out under the apps root and print what was decided."""
    source = Path(args.path).resolve()
    if not source.exists():
        print(f"assay: {source} does not exist")
        return 2
    try:
        model_dir = app_dir(settings.apps_dir, args.model, 1).parent  # the slug checked first
        number = args.app or 1 + max(
            (int(path.name[3:]) for path in model_dir.glob("app*") if path.name[3:].isdigit()), default=0
        )
        decision = import_app(source, app_dir(settings.apps_dir, args.model, number))
    except (FileExistsError, ValueError) as error:
        print(f"assay: {error}")
        return 2
    if args.json:
        print(json.dumps(asdict(decision), indent=2))
        return 0
    print(f"imported {source} as {args.model} app {number}: {decision.target}")
    for label, value in (("backend", decision.backend), ("frontend", decision.frontend)):
        print(f"  {label}: {value or 'none'}")
    for line in decision.env:
        print(f"  .env: {line}")
    print(f"  start rule: {decision.start_rule}")
    print(f"  servers it will get: {', '.join(decision.dependencies) or 'none'}")
    for note in decision.notes:
        print(f"  note: {note}")
    return 0


def add_parsers(commands: Any) -> None:
    apps = commands.add_parser("apps", help="bring your own apps: lay them out as Assay expects")
    verbs = apps.add_subparsers(dest="apps_command", required=True)
    imported = verbs.add_parser("import", help="copy a repository or a single-file app under the apps root")
    imported.add_argument("path", help="a repository folder, or a single .py, .js or .html file")
    imported.add_argument("--model", required=True, help="the model slug to file it under")
    imported.add_argument("--app", type=int, help="its app number (default: the next free one)")
    imported.add_argument("--json", action="store_true", help="print what was decided as JSON")
    imported.set_defaults(handler=run_import)
