"""Preparing an app to run: its own copy, and the dependencies it needs, each prepared once per content hash.

A virtualenv is built from `backend/requirements.txt` inside a sandbox that has the network for that step only:
wheels first (`--only-binary :all:`, so no package's setup code runs), source packages only when that fails (their
setup code then runs confined too). A frontend's `node_modules` comes from `npm ci` (`npm install` without a lock
file) with `--ignore-scripts`, where npm exists. Both are kept under the cache folder by hash of what they are
built from, built in a temporary folder and renamed into place, so parallel runs and replicas never see half of one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from services.orchestrator.apps.errors import AppNotStarted, PrepareFailed
from services.orchestrator.apps.interpreters import Interpreter, choose
from services.orchestrator.apps.pins import install_relaxed
from services.orchestrator.apps.prepare_log import failing_requirement, whole
from services.orchestrator.apps.sandbox import VENV_ROOT, Mounts, bwrap_argv, hand_over
from shared.operations.process import ProcessOutcome, run_process

SKIPPED_FOLDERS = frozenset({"node_modules", ".venv", "venv", "__pycache__", ".git"})
READY_MARK = ".assay-ready"
RELAXED_RECORD = ".assay-relaxed.json"  # in a virtualenv's folder: the pins relaxed to build it
_FAILED_STEP = re.compile(r"\[(?:venv|pip|npm): (?:exit [1-9]|exit -|timed out)")
_locks: dict[str, asyncio.Lock] = {}


@dataclass(frozen=True)
class PrepareConfig:
    sandboxed: bool
    python: str  # the interpreter the virtualenvs are made with (visible inside the sandbox)
    cache_dir: Path
    timeout_s: float


@dataclass(frozen=True)
class Prepared:
    """The app's own copy and what it was given: a virtualenv and node_modules when it needed them."""

    copy: Path
    source_hash: str
    venv: Path | None
    node_modules: Path | None
    backend_node_modules: Path | None  # a Node backend's dependencies
    log: str  # every step's command, output and ending (prepare_log.whole)
    python: Interpreter  # what the virtualenv was made with, and why
    relaxed: dict[str, str]  # requirement lines whose pins were relaxed to install (original → relaxed)


def _files(app: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(app):
        dirs[:] = sorted(name for name in dirs if name not in SKIPPED_FOLDERS)
        found += [Path(folder, name) for name in sorted(files)]
    return [path for path in found if path.is_file() and not path.is_symlink()]


def source_hash(app: Path) -> str:
    """sha256 over every file's relative path and bytes (dependency folders left out)."""
    digest = hashlib.sha256()
    for path in _files(app):
        digest.update(path.relative_to(app).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def copy_app(app: Path, copy: Path) -> None:
    """A fresh copy of the app's files (no symlinks, no dependency folders), owned by the sandbox user."""
    for path in _files(app):
        target = copy / path.relative_to(app)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    copy.mkdir(parents=True, exist_ok=True)
    hand_over(copy)


def _hash_of(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    return digest.hexdigest()[:24]


def _pip_env() -> dict[str, str]:
    """What the preparation steps see: a minimal environment plus the operator's pip settings (index, wheels)."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
    env.update({name: value for name, value in os.environ.items() if name.startswith("PIP_")})
    return env


def _outcome_log(step: str, outcome: ProcessOutcome) -> str:
    ending = "timed out" if outcome.timed_out else f"exit {outcome.exit_code}"
    return f"$ {' '.join(outcome.argv)}\n{outcome.stdout}{outcome.stderr}[{step}: {ending}, {outcome.duration_s} s]\n"


async def _step(
    config: PrepareConfig, mounts: Mounts, command: list[str], cwd: str, log: list[str], step: str
) -> bool:
    """One preparation command, sandboxed with the network; its output goes to the log. True on success."""
    argv = bwrap_argv(mounts, network=True, chdir=cwd, command=command) if config.sandboxed else command
    outcome = await run_process(argv, timeout_s=config.timeout_s, env=_pip_env())
    log.append(_outcome_log(step, outcome))
    return outcome.exit_code == 0


async def _cached(
    key: str, cache_dir: Path, build: Callable[[Path], Awaitable[None]], log: list[str]
) -> Path:
    """The folder `cache_dir/key`, built once by `build` into a temporary folder and renamed into place."""
    final = cache_dir / key
    async with _locks.setdefault(key, asyncio.Lock()):
        if (final / READY_MARK).exists():
            log.append(f"[{key}: reused from the cache]\n")
            return final
        building = cache_dir / f".{key}.tmp-{secrets.token_hex(4)}"
        await asyncio.to_thread(building.mkdir, parents=True)
        await asyncio.to_thread(hand_over, building)
        try:
            await build(building)
            await asyncio.to_thread((building / READY_MARK).touch)
            try:
                await asyncio.to_thread(building.rename, final)
            except OSError:  # another replica got there first: theirs is as good
                await asyncio.to_thread(shutil.rmtree, building, True)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, building, True)
            raise
    return final


async def _venv(config: PrepareConfig, python: str, requirements: Path, log: list[str]) -> Path:
    key = f"venv-{_hash_of(requirements)}-{hashlib.sha256(python.encode()).hexdigest()[:8]}"

    async def build(folder: Path) -> None:
        inside = VENV_ROOT if config.sandboxed else str(folder)
        reqs = "/assay/requirements.txt" if config.sandboxed else str(requirements)
        mounts = Mounts(binds={folder: VENV_ROOT}, ro_binds={requirements: "/assay/requirements.txt"})
        pip = [f"{inside}/bin/python", "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]
        if not await _step(config, mounts, [python, "-m", "venv", inside], "/tmp", log, "venv"):
            raise AppNotStarted(f"app did not start: creating its virtualenv failed ({_ending(log)})")

        async def install(listed: str) -> bool:
            if await _step(
                config, mounts, [*pip, "--only-binary", ":all:", "-r", listed], "/tmp", log, "wheels"
            ):
                return True
            log.append("[not every requirement has a wheel: installing from source, inside the sandbox]\n")
            return await _step(config, mounts, [*pip, "-r", listed], "/tmp", log, "pip")

        if await install(reqs):
            return
        original = await asyncio.to_thread(requirements.read_text, errors="replace")
        relaxed = await install_relaxed(original, folder, inside, install, log)
        if relaxed is None:
            raise AppNotStarted(
                f"app did not start: installing backend/requirements.txt failed ({_ending(log)})"
            )
        await asyncio.to_thread((folder / RELAXED_RECORD).write_text, json.dumps(relaxed))

    return await _cached(key, config.cache_dir, build, log)


def relaxed_pins(venv: Path | None) -> dict[str, str]:
    """What had to be relaxed for the virtualenv to install (original line → relaxed line); empty: nothing."""
    try:
        return dict(json.loads((venv / RELAXED_RECORD).read_text())) if venv else {}
    except (OSError, ValueError):
        return {}


def _wants_npm(frontend: Path) -> bool:
    try:
        package = json.loads((frontend / "package.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(package, dict) and bool(package.get("dependencies") or package.get("devDependencies"))


async def _node_modules(config: PrepareConfig, frontend: Path, log: list[str]) -> Path:
    """node_modules for the part at `frontend` (the frontend, or a Node backend)."""
    lock = frontend / "package-lock.json"
    key = f"node-{_hash_of(frontend / 'package.json', lock)}"

    async def build(folder: Path) -> None:
        for name in ("package.json", "package-lock.json"):
            if (frontend / name).is_file():
                await asyncio.to_thread(shutil.copyfile, frontend / name, folder / name)
        await asyncio.to_thread(hand_over, folder)
        inside = "/build" if config.sandboxed else str(folder)
        verb = ["ci"] if lock.is_file() else ["install"]
        npm = [shutil.which("npm") or "npm", *verb, "--ignore-scripts", "--no-audit", "--no-fund"]
        if not await _step(config, Mounts(binds={folder: "/build"}), npm, inside, log, "npm"):
            raise AppNotStarted(
                f"app did not start: {' '.join(npm[:2])} for its {frontend.name} failed ({_ending(log)})"
            )

    return await _cached(key, config.cache_dir, build, log) / "node_modules"


def _first_failure(log: list[str]) -> str:
    """The log entry of the first step that failed for good (a wheels-only attempt may fail on the way)."""
    return next((entry for entry in log if _FAILED_STEP.search(entry)), log[-1] if log else "")


def _ending(log: list[str]) -> str:
    """`pip: exit 1; failing requirement: gevent==1.2.2`: how the first failed step ended and what it could not
    install (not what a retry with relaxed pins then said)."""
    last = _first_failure(log)
    ending = (
        last.rsplit("[", 1)[-1].split(",")[0].rstrip("]\n") if last.rstrip().endswith("]") else "no output"
    )
    failing = failing_requirement(last)
    return ending + (f"; failing requirement: {failing}" if failing else "")


async def prepare(config: PrepareConfig, app: Path, copy: Path) -> Prepared:
    """Copy `app` to `copy`, and give it what it needs; PrepareFailed with the whole log when a step fails."""
    log: list[str] = []
    digest = await asyncio.to_thread(source_hash, app)
    await asyncio.to_thread(copy_app, app, copy)
    requirements = copy / "backend" / "requirements.txt"
    frontend = copy / "frontend"
    python = await asyncio.to_thread(choose, copy, config.python)
    log.append(f"[python: {python.path} ({python.version or 'version unknown'}): {python.why}]\n")
    try:
        venv = await _venv(config, python.path, requirements, log) if requirements.is_file() else None
        parts: dict[Path, Path | None] = {
            part: None for part in (frontend, copy / "backend") if _wants_npm(part)
        }
        for part in parts:
            if shutil.which("npm") is None:
                log.append(f"[npm is not installed: the {part.name}'s dependencies were not installed]\n")
            else:
                parts[part] = await _node_modules(config, part, log)
        node_modules, backend_node_modules = parts.get(frontend), parts.get(copy / "backend")
    except AppNotStarted as error:
        text = "".join(log)
        raise PrepareFailed(str(error), whole(text), failing_requirement(_first_failure(log))) from error
    return Prepared(
        copy=copy,
        source_hash=digest,
        venv=venv,
        node_modules=node_modules,
        backend_node_modules=backend_node_modules,
        log=whole("".join(log)),
        python=python,
        relaxed=await asyncio.to_thread(relaxed_pins, venv),
    )
