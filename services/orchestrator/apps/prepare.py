"""Preparing an app to run: its own copy, and the dependencies it needs, each prepared once per content hash.

A virtualenv is built from `backend/requirements.txt` in a preparation sandbox as tight as the run's
(prep_sandbox.py: the run's limits, no network but the package index proxy): wheels first (`--only-binary :all:`,
so no package's setup code runs), source packages only when that fails (their setup code then runs confined too).
A requirements file naming an index of its own is refused (requirements_policy.py). A frontend's `node_modules`
comes from `npm ci` (`npm install` without a lock file) with `--ignore-scripts`, no `.npmrc` read and the registry
named, where npm exists (for a Node backend too). The virtualenv is made with the Python the app declares
(interpreters.py); pins that cannot install are relaxed (pins.py). The log keeps every step whole (prepare_log.py).
All are kept under the cache folder by hash of what they are
built from, built in a temporary folder and renamed into place, so parallel runs and replicas never see half of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from services.orchestrator.apps.errors import AppNotStarted, PrepareFailed
from services.orchestrator.apps.failed_builds import forget, recall, remember, remembered_reason
from services.orchestrator.apps.interpreters import Interpreter, choose
from services.orchestrator.apps.pins import install_relaxed
from services.orchestrator.apps.prep_sandbox import PrepBox, StepOutcome, proxy_env, run_step
from services.orchestrator.apps.prepare_log import failing_requirement, whole
from services.orchestrator.apps.requirements_policy import check_requirements
from services.orchestrator.apps.sandbox import APP_ROOT, VENV_ROOT, hand_over, take_back
from shared.operations.process import run_process

SKIPPED_FOLDERS = frozenset({"node_modules", ".venv", "venv", "__pycache__", ".git"})
READY_MARK = ".assay-ready"
_FAILED_STEP = re.compile(r"\[(?:venv|pip|npm): (?:exit [1-9]|exit -|timed out)")
REASON_TAIL = 4000  # characters of the log quoted in a failed preparation's reason
NPM_REGISTRY = "https://registry.npmjs.org/"
NPM_BUILD = "/build"
# A user config that does not exist in the sandbox's fresh /tmp: npm reads no .npmrc but the operator's global one
# (read-only under /usr or /etc: its certificate authorities, say); the app's own never reaches the build folder.
NPM_NO_CONFIG = ["--userconfig=/tmp/.assay-no-npmrc"]
_locks: dict[str, asyncio.Lock] = {}


@dataclass(frozen=True)
class PrepareConfig:
    python: str  # the interpreter the virtualenvs are made with (visible inside the sandbox)
    cache_dir: Path
    timeout_s: float
    box: PrepBox | None = None  # how each step is confined (None: unsandboxed, ASSAY_APP_SANDBOX=off)
    index_allow: frozenset[str] = frozenset()  # ASSAY_APP_INDEX_ALLOW
    # ASSAY_APP_PREPARE_FAILURE_MEMORY_S (failed_builds.py); 0: nothing remembered
    failure_memory_s: float = 0.0
    fresh: bool = False  # the task asked for a fresh run: a remembered failure is built again


@dataclass(frozen=True)
class Prepared:
    """The app's own copy and what it was given: a virtualenv and node_modules when it needed them."""

    copy: Path
    source_hash: str
    venv: Path | None
    node_modules: Path | None
    log: str  # every step's command, output and ending (prepare_log.whole)
    python: Interpreter  # what the virtualenv was made with, and why
    relaxed: dict[str, str]  # requirement lines whose pins were relaxed to install (original → relaxed)
    backend_node_modules: Path | None = None  # a Node backend's dependencies


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


def _outcome_log(step: str, outcome: StepOutcome) -> str:
    ending = "timed out" if outcome.timed_out else f"exit {outcome.exit_code}"
    return f"$ {' '.join(outcome.argv)}\n{outcome.output}[{step}: {ending}, {outcome.duration_s} s]\n"


async def _step(
    config: PrepareConfig,
    step: str,
    command: list[str],
    cwd: str,
    writable: dict[Path, str],
    source: Path | None,
    log: list[str],
) -> bool:
    """One preparation command, in its sandbox (or, unsandboxed, as it is, in the host folder `cwd`); its output
    goes to the log. True on success."""
    if config.box is not None:
        outcome = await run_step(
            config.box,
            name=step,
            command=command,
            cwd=cwd,
            env=_pip_env(),
            writable=writable,
            source=source,
            work_parent=config.cache_dir,
        )
    else:
        ran = await run_process(command, cwd=Path(cwd), timeout_s=config.timeout_s, env=_pip_env())
        exit_code = None if ran.timed_out else ran.exit_code
        outcome = StepOutcome(
            argv=ran.argv, exit_code=exit_code, output=ran.stdout + ran.stderr, duration_s=ran.duration_s
        )
    log.append(_outcome_log(step, outcome))
    return outcome.exit_code == 0


async def _cached(
    key: str,
    cache_dir: Path,
    build: Callable[[Path], Awaitable[None]],
    log: list[str],
    memory_s: float = 0.0,
    fresh: bool = False,
) -> Path:
    """The folder `cache_dir/key`, built once by `build` into a temporary folder and renamed into place: taken back
    from the sandbox user first (sandbox.take_back), so that it is never written again. A build that failed is
    remembered for `memory_s` seconds (failed_builds.py): meanwhile the same key fails at once with its reason and
    log, unless `fresh`."""
    final = cache_dir / key
    async with _locks.setdefault(key, asyncio.Lock()):
        if await asyncio.to_thread(_is_ready, final):
            await asyncio.to_thread(_taken_back, final)
            log.append(f"[{key}: reused from the cache]\n")
            return final
        failed = None if fresh else await asyncio.to_thread(recall, cache_dir, key, memory_s)
        if failed is not None:
            log.extend(failed.log)
            log.append(f"[{key}: this build failed before and is remembered: not run again]\n")
            raise AppNotStarted(remembered_reason(failed, memory_s))
        first_entry = len(log)
        building = cache_dir / f".{key}.tmp-{secrets.token_hex(4)}"
        await asyncio.to_thread(building.mkdir, parents=True)
        await asyncio.to_thread(hand_over, building)
        try:
            await build(building)
            await asyncio.to_thread(take_back, building)
            await asyncio.to_thread(_mark_ready, building)
            try:
                await asyncio.to_thread(building.rename, final)
            except OSError:  # another replica got there first: theirs is as good
                await asyncio.to_thread(shutil.rmtree, building, True)
        except AppNotStarted as error:
            await asyncio.to_thread(shutil.rmtree, building, True)
            if memory_s > 0:
                await asyncio.to_thread(remember, cache_dir, key, str(error), log[first_entry:])
            raise
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, building, True)
            raise
        await asyncio.to_thread(forget, cache_dir, key)
    return final


def _taken_back(folder: Path) -> None:
    """A ready entry made before entries were taken back (still the sandbox user's) is taken back on its next use: no
    sandbox had it writable since it was ready (runs bind it read-only), so it is as sound as a new one."""
    if os.geteuid() == 0 and os.lstat(folder).st_uid != 0:
        take_back(folder)


def _is_ready(folder: Path) -> bool:
    """Whether `folder` holds the ready mark as a file of its own (never through a link the build left)."""
    try:
        return stat.S_ISREG(os.lstat(folder / READY_MARK).st_mode)
    except OSError:
        return False


def _mark_ready(folder: Path) -> None:
    """The ready mark in a folder the build sandbox could write: created afresh, never through a link it left."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(READY_MARK, dir_fd=fd)  # unlink never follows a link
        os.close(os.open(READY_MARK, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


async def _venv(config: PrepareConfig, python: str, copy: Path, source_digest: str, log: list[str]) -> Path:
    requirements = copy / "backend" / "requirements.txt"
    checked = check_requirements(
        await asyncio.to_thread(requirements.read_text, "utf-8", "replace"), config.index_allow
    )
    if checked.refused:
        log.append(f"[backend/requirements.txt refused: {checked.reason()}]\n")
        raise AppNotStarted(f"app did not start: backend/requirements.txt {checked.reason()}")
    # A requirement on the app's own files (./pkg) makes the virtualenv the app's own.
    own = f"-{source_digest[:12]}" if checked.local else ""
    key = f"venv-{_hash_of(requirements)}-{hashlib.sha256(python.encode()).hexdigest()[:8]}{own}"

    async def build(folder: Path) -> None:
        sandboxed = config.box is not None
        venv = VENV_ROOT if sandboxed else str(folder)
        cwd = f"{APP_ROOT}/backend" if sandboxed else str(copy / "backend")
        pip = [f"{venv}/bin/python", "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]

        async def step(name: str, command: list[str]) -> bool:
            return await _step(config, name, command, cwd, {folder: VENV_ROOT}, copy, log)

        if not await step("venv", [python, "-m", "venv", venv]):
            raise AppNotStarted(f"app did not start: creating its virtualenv failed ({_ending(log)})")

        async def install(listed: str) -> bool:
            if await step("wheels", [*pip, "--only-binary", ":all:", "-r", listed]):
                return True
            log.append("[not every requirement has a wheel: installing from source, inside the sandbox]\n")
            return await step("pip", [*pip, "-r", listed])

        if await install("requirements.txt"):
            return
        original = await asyncio.to_thread(requirements.read_text, "utf-8", "replace")
        relaxed = await install_relaxed(original, folder, venv, install, log)
        if relaxed is None:
            raise AppNotStarted(
                f"app did not start: installing backend/requirements.txt failed ({_ending(log)})"
            )
        await asyncio.to_thread(_relaxed_record(config, key).write_text, json.dumps(relaxed))

    return await _cached(key, config.cache_dir, build, log, config.failure_memory_s, config.fresh)


def _relaxed_record(config: PrepareConfig, key: str) -> Path:
    """Where the pins relaxed to build the virtualenv `key` are kept: beside it, in a folder only Assay writes."""
    return config.cache_dir / f"{key}.relaxed.json"


def relaxed_pins(config: PrepareConfig, venv: Path | None) -> dict[str, str]:
    """What had to be relaxed for the virtualenv to install (original line → relaxed line); empty: nothing."""
    try:
        return dict(json.loads(_relaxed_record(config, venv.name).read_text())) if venv else {}
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
        inside = NPM_BUILD if config.box is not None else str(folder)
        verb = ["ci"] if lock.is_file() else ["install"]
        npm = [shutil.which("npm") or "npm", *verb, "--ignore-scripts", "--no-audit", "--no-fund"]
        npm += [*NPM_NO_CONFIG, f"--registry={NPM_REGISTRY}"]
        if config.box is not None:
            npm.append(f"--https-proxy={proxy_env()['HTTPS_PROXY']}")
        if not await _step(config, "npm", npm, inside, {folder: NPM_BUILD}, None, log):
            raise AppNotStarted(
                f"app did not start: {' '.join(npm[:2])} for its {frontend.name} failed ({_ending(log)})"
            )

    folder = await _cached(key, config.cache_dir, build, log, config.failure_memory_s, config.fresh)
    built = folder / "node_modules"
    if not await asyncio.to_thread(_is_folder, built):
        # npm's sandbox made it: a link here would have the run bind whatever it points to.
        raise AppNotStarted(f"app did not start: {built.name} is not a folder after npm")
    return built


def _is_folder(path: Path) -> bool:
    """A folder of its own (never through a link)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


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


async def _copied(config: PrepareConfig, app: Path, copy: Path, log: list[str]) -> tuple[str, Interpreter]:
    """The app's source hash, its copy at `copy`, and the Python its virtualenv is made with."""
    digest = await asyncio.to_thread(source_hash, app)
    await asyncio.to_thread(copy_app, app, copy)
    python = await asyncio.to_thread(choose, copy, config.python)
    log.append(f"[python: {python.path} ({python.version or 'version unknown'}): {python.why}]\n")
    return digest, python


def _failed(error: AppNotStarted, log: list[str]) -> PrepareFailed:
    text = "".join(log)
    # the reason's first line says what failed and how; the log's tail follows it (the task's reason shows
    # what pip, npm or the index proxy said), and app.json keeps the whole log
    reason = f"{error}\n{text[-REASON_TAIL:]}"
    return PrepareFailed(reason, whole(text), failing_requirement(_first_failure(log)))


async def prepare_venv(config: PrepareConfig, app: Path, copy: Path) -> Path | None:
    """Only the virtualenv of `app` (copied to `copy` to build it), from the cache or built as `prepare` builds it;
    None when the app has no backend/requirements.txt, PrepareFailed with the whole log when a step fails. The
    static analyzer's pylint and mypy read it (never run it)."""
    log: list[str] = []
    digest, python = await _copied(config, app, copy, log)
    if not (copy / "backend" / "requirements.txt").is_file():
        return None
    try:
        return await _venv(config, python.path, copy, digest, log)
    except AppNotStarted as error:
        raise _failed(error, log) from error


async def prepare(config: PrepareConfig, app: Path, copy: Path) -> Prepared:
    """Copy `app` to `copy`, and give it what it needs; PrepareFailed with the whole log when a step fails."""
    log: list[str] = []
    digest, python = await _copied(config, app, copy, log)
    requirements = copy / "backend" / "requirements.txt"
    frontend, backend = copy / "frontend", copy / "backend"
    node: dict[Path, Path | None] = {part: None for part in (frontend, backend) if _wants_npm(part)}
    try:
        venv = await _venv(config, python.path, copy, digest, log) if requirements.is_file() else None
        for part in node:
            if shutil.which("npm") is None:
                log.append(f"[npm is not installed: the {part.name}'s dependencies were not installed]\n")
            else:
                node[part] = await _node_modules(config, part, log)
    except AppNotStarted as error:
        raise _failed(error, log) from error
    return Prepared(
        copy=copy,
        source_hash=digest,
        venv=venv,
        node_modules=node.get(frontend),
        log=whole("".join(log)),
        python=python,
        relaxed=await asyncio.to_thread(relaxed_pins, config, venv),
        backend_node_modules=node.get(backend),
    )
