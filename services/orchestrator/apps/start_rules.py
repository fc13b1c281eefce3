"""Which command starts an app's backend: the first rule, in a fixed order, that fits what the app ships.

The order (each rule says why it fits or why not, and the chosen one is recorded in `app.json`):
 1. `explicit`: a command the user gave: the request's `options.app.start`, else `ASSAY_START` in the app's `.env`
    (at its root or in `backend/`); the user knows best. It runs in `backend/`.
 2. `procfile`: the `web:` line of a `Procfile`.
 3. `python-file`: `python <file>` for the usual entry files (app.py, main.py, server.py, run.py, wsgi.py) that
    start themselves (a `__main__` block).
 4. `django`: `python manage.py runserver` where a `manage.py` is shipped.
 5. `asgi`: `uvicorn module:app` (else hypercorn) for a FastAPI/Starlette/Quart/Litestar object found in the code.
 6. `flask-run`: `flask --app module run` for a Flask object or an app factory (`create_app`, `make_app`) in code
    that never runs itself; `gunicorn module:app` where gunicorn is installed and flask is not.
 7. `dockerfile`: the Dockerfile's `ENTRYPOINT` and `CMD`.
 8. `node-start` / `node-file`: `package.json`'s `start` script, else `node server.js|app.js|index.js|main.js`.
 9. `python-fallback`: `python <file>` for an entry file without a `__main__` block (it may start on import).

A command is an argv whose first word may be a placeholder: PYTHON (the app's interpreter), NODE, NPM, SHELL (for
a command line with variables, e.g. `$PORT`). Commands run in the folder named by `folder` (relative to the app).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

PYTHON, NODE, NPM, SHELL = "{python}", "{node}", "{npm}", "{shell}"
ENTRY_FILES = ("app.py", "main.py", "server.py", "run.py", "wsgi.py", "application.py")
NODE_FILES = ("server.js", "app.js", "index.js", "main.js")
START_KEY = "ASSAY_START"

_MAIN = re.compile(r"""^if\s+__name__\s*==\s*['"]__main__['"]\s*:""", re.MULTILINE)
_ASGI = re.compile(r"^(\w+)\s*(?::[^=]*)?=\s*(?:\w+\.)?(FastAPI|Starlette|Quart|Litestar)\(", re.MULTILINE)
_FLASK = re.compile(r"^(\w+)\s*(?::[^=]*)?=\s*(?:flask\.)?Flask\(", re.MULTILINE)
_FACTORY = re.compile(r"^def\s+(create_app|make_app)\s*\(", re.MULTILINE)


@dataclass(frozen=True)
class Start:
    """How to start the backend: the rule, its argv (placeholders allowed), where, and why it was chosen."""

    rule: str
    argv: list[str]
    folder: str  # relative to the app's root: "backend", or "." for a command declared at the root
    why: str


@dataclass(frozen=True)
class Installed:
    """What the app's environment offers: Python packages of its virtualenv and whether node/npm exist."""

    packages: frozenset[str] = frozenset()
    node: bool = False


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def env_value(env_file: Path, key: str) -> str | None:
    """The value of `key` in a dotenv file (quotes removed), or None."""
    for line in _read(env_file).splitlines():
        name, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and name.strip() == key:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            return value or None
    return None


def _explicit(app: Path, options: dict[str, object]) -> Start | None:
    app_options = options.get("app")
    given = app_options.get("start") if isinstance(app_options, dict) else None
    if isinstance(given, str) and given.strip():
        return Start("explicit", [SHELL, given], "backend", "the request's options.app.start")
    for folder in (".", "backend"):
        value = env_value(app / folder / ".env", START_KEY)
        if value:
            where = ".env" if folder == "." else "backend/.env"
            return Start("explicit", [SHELL, value], "backend", f"{START_KEY} in {where}")
    return None


def _procfile(app: Path) -> Start | None:
    for folder in ("backend", "."):
        for line in _read(app / folder / "Procfile").splitlines():
            kind, sep, command = line.partition(":")
            if sep and kind.strip() == "web" and command.strip():
                where = "Procfile" if folder == "." else "backend/Procfile"
                return Start("procfile", [SHELL, command.strip()], folder, f"the `web:` line of {where}")
    return None


def _python_file(backend: Path) -> Start | None:
    for name in ENTRY_FILES:
        if _MAIN.search(_read(backend / name)):
            return Start("python-file", [PYTHON, name], "backend", f"backend/{name} starts itself (__main__)")
    return None


def _django(backend: Path) -> Start | None:
    if not (backend / "manage.py").is_file():
        return None
    argv = [PYTHON, "manage.py", "runserver", "127.0.0.1:{port}", "--noreload"]
    return Start("django", argv, "backend", "backend/manage.py (Django)")


def _modules(backend: Path) -> list[tuple[str, str]]:
    """(module name, source) of the backend's top-level Python files, the usual entry files first."""
    files = sorted(backend.glob("*.py"), key=lambda path: (path.name not in ENTRY_FILES, path.name))
    return [(path.stem, _read(path)) for path in files]


def _asgi(backend: Path, installed: Installed) -> Start | None:
    for module, text in _modules(backend):
        found = _ASGI.search(text)
        if not found:
            continue
        target = f"{module}:{found.group(1)}"
        why = f"an ASGI app ({found.group(2)}) `{found.group(1)}` in backend/{module}.py"
        for server in ("uvicorn", "hypercorn"):
            if server in installed.packages:
                argv = [PYTHON, "-m", server, target]
                argv += ["--port", "{port}"] if server == "uvicorn" else ["--bind", "127.0.0.1:{port}"]
                return Start("asgi", argv, "backend", f"{why}, served by {server}")
    return None


def _flask(backend: Path, installed: Installed) -> Start | None:
    for module, text in _modules(backend):
        found = _FLASK.search(text) or _FACTORY.search(text)
        if not found:
            continue
        name = found.group(1)
        kind = "an app factory" if name in ("create_app", "make_app") else "a Flask app"
        if "flask" in installed.packages:
            argv = [PYTHON, "-m", "flask", "--app", module, "run", "--port", "{port}"]
            return Start("flask-run", argv, "backend", f"{kind} `{name}` in backend/{module}.py, never run")
        if "gunicorn" in installed.packages:
            target = f"{module}:{name}()" if kind == "an app factory" else f"{module}:{name}"
            argv = [PYTHON, "-m", "gunicorn", "--bind", "127.0.0.1:{port}", target]
            return Start("flask-run", argv, "backend", f"{kind} `{name}` in backend/{module}.py, by gunicorn")
    return None


def dockerfile_command(text: str) -> str | None:
    """The command line a Dockerfile runs: its last ENTRYPOINT followed by its last CMD (exec or shell form)."""
    parts: dict[str, str] = {}
    for line in re.sub(r"\\\n", " ", text).splitlines():
        word, _, rest = line.strip().partition(" ")
        if word.upper() in ("CMD", "ENTRYPOINT") and rest.strip():
            rest = rest.strip()
            try:
                exec_form = json.loads(rest)
            except ValueError:
                exec_form = None
            parts[word.upper()] = shlex.join(exec_form) if isinstance(exec_form, list) else rest
    joined = " ".join(part for part in (parts.get("ENTRYPOINT"), parts.get("CMD")) if part)
    return joined or None


def _dockerfile(app: Path) -> Start | None:
    for folder in ("backend", "."):
        command = dockerfile_command(_read(app / folder / "Dockerfile"))
        if command:
            where = "Dockerfile" if folder == "." else "backend/Dockerfile"
            return Start("dockerfile", [SHELL, command], folder, f"the CMD/ENTRYPOINT of {where}")
    return None


def _node(backend: Path, installed: Installed) -> Start | None:
    if not installed.node:
        return None
    try:
        package = json.loads(_read(backend / "package.json") or "{}")
    except ValueError:
        package = {}
    scripts = package.get("scripts") if isinstance(package, dict) else None
    start = scripts.get("start") if isinstance(scripts, dict) else None
    if isinstance(start, str) and start.strip():
        return Start(
            "node-start", [NPM, "start"], "backend", f"the `start` script of backend/package.json: {start}"
        )
    for name in NODE_FILES:
        if (backend / name).is_file():
            return Start("node-file", [NODE, name], "backend", f"backend/{name}")
    return None


def _fallback(backend: Path) -> Start | None:
    for name in ENTRY_FILES:
        if (backend / name).is_file():
            return Start("python-fallback", [PYTHON, name], "backend", f"backend/{name} (no __main__ block)")
    return None


def choose(app: Path, installed: Installed, options: dict[str, object] | None = None) -> Start | None:
    """The first rule of the module's order that fits the app at `app`, else None."""
    backend = app / "backend"
    return (
        _explicit(app, options or {})
        or _procfile(app)
        or _python_file(backend)
        or _django(backend)
        or _asgi(backend, installed)
        or _flask(backend, installed)
        or _dockerfile(app)
        or _node(backend, installed)
        or _fallback(backend)
    )


def _folders(path: str, pattern: str) -> list[str]:
    """Sub-folders of `path` matching `pattern`, never through a link (a built venv is written by its build)."""
    try:
        with os.scandir(path) as entries:
            return [e.path for e in entries if e.is_dir(follow_symlinks=False) and fnmatch(e.name, pattern)]
    except OSError:
        return []


def installed_packages(venv: Path | None) -> frozenset[str]:
    """Normalised names of the distributions installed in `venv`, from the names of their .dist-info folders only
    (no link followed, no file read)."""
    if venv is None:
        return frozenset()
    found = [
        info
        for lib in _folders(str(venv), "lib")
        for version in _folders(lib, "python*")
        for site in _folders(version, "site-packages")
        for info in _folders(site, "*.dist-info")
    ]
    return frozenset(os.path.basename(info).split("-")[0].lower().replace("_", "-") for info in found)
