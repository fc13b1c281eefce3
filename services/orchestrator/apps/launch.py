"""Starting a prepared app in its sandbox on ports Assay chose, waiting until it answers, and stopping it.

Inside the sandbox, inside.py applies the limits, copies the app onto its disk and starts the app's processes;
outside, a loopback port per process is forwarded into it over the control channel made before it starts
(channel.py, forwarder.py), which also brings back the note of how it ended. The sandbox runs in its own process
group: stopping it stops everything in it, and bwrap's --die-with-parent ends it with the orchestrator.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.orchestrator.apps import inside, services_deps, start_rules
from services.orchestrator.apps.channel import Channel, start_with_channel
from services.orchestrator.apps.errors import AppNotStarted
from services.orchestrator.apps.forwarder import start_forwarder
from services.orchestrator.apps.listening import LISTENS_NOTE
from services.orchestrator.apps.prepare import Prepared
from services.orchestrator.apps.sandbox import (
    APP_ROOT,
    DISK_APP,
    DISK_ROOT,
    DISK_TMP,
    INIT_PATH,
    SOURCE_ROOT,
    VENV_ROOT,
    Mounts,
    bwrap_argv,
    init_binds,
    run_limits,
)
from services.orchestrator.apps.start_rules import Installed, Start, installed_packages
from shared.operations.app_env import CANARY_PORT_KEY
from shared.operations.ports import PortRange, free_port, reserve_port
from shared.operations.process_groups import stop_group
from shared.wire.app_run import SandboxSettings

STATIC_FOLDERS = ("dist", "build", ".")
STOP_GRACE_S = 3.0
OUTPUT_TAIL = 16000  # of the app's output kept in app.json: long enough for a traceback and what led to it
POLL_S = 0.2
PORT_NAMES = ("backend", "frontend", "canary")  # the host ports a run is given
GONE_WAIT_S = 10.0

# A line naming an exception or error, as Python (`OSError: [Errno 28] …`, `MemoryError`) and Node.js (`Error: …`)
# end a crash's output with one
ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception)\b")


@dataclass(frozen=True)
class LaunchConfig:
    settings: SandboxSettings
    python: str  # used for the frontend's static server and the init when the app has no virtualenv
    start_timeout_s: float
    port_range: PortRange | None = None  # ASSAY_PORT_RANGE: the forwarders' ports


@dataclass(frozen=True)
class Layout:
    """Where the app's parts are as the app sees them: fixed paths in the sandbox, host paths without it."""

    app: str
    venv: str | None
    init: str
    tmp: str
    bin: str  # `python` for command lines that name it (a Dockerfile's CMD), where the app has no virtualenv


@dataclass
class Launched:
    """A started sandbox: its process, the forwarders into it, and what it runs."""

    process: asyncio.subprocess.Process
    command: list[str]
    processes: dict[str, list[str]]
    urls: dict[str, str]
    output: Path
    channel: Channel  # the connections into the sandbox, and inside.py's note of how the app ended
    canary_port: int | None = None  # the SSRF check's marker listener inside the sandbox (inside.py)
    start: Start | None = None  # the rule that chose the backend's command
    dependencies: dict[str, str] = field(default_factory=dict)  # server → started or skipped, and why needed
    forwarders: list[asyncio.Server] = field(default_factory=list)

    def port_variables(self) -> dict[str, int]:
        """BACKEND_PORT / FRONTEND_PORT of what runs, as the app's .env would name them, and the marker
        listener's ASSAY_CANARY_PORT."""
        ports = {f"{name.upper()}_PORT": int(url.rsplit(":", 1)[1]) for name, url in self.urls.items()}
        if self.canary_port is not None:
            ports[CANARY_PORT_KEY] = self.canary_port
        return ports


STATIC_SERVER = "static_server.py"  # beside the init (sandbox.init_binds)


def _layout(sandboxed: bool, prepared: Prepared, run_dir: Path) -> Layout:
    if sandboxed:
        venv = VENV_ROOT if prepared.venv else None
        return Layout(APP_ROOT, venv, INIT_PATH, "/tmp", f"{Path(INIT_PATH).parent}/bin")
    venv = str(prepared.venv) if prepared.venv else None
    return Layout(str(prepared.copy), venv, inside.__file__, str(run_dir / "tmp"), str(run_dir / "bin"))


def _commands(
    prepared: Prepared, layout: Layout, python: str, ports: dict[str, int], options: dict[str, object]
) -> tuple[dict[str, tuple[list[str], str]], Start | None]:
    """name → (argv, working folder) as seen by the app, for the backend (by the first start rule that fits) and a
    frontend that needs no build; and the backend's start rule."""
    copy = prepared.copy
    installed = Installed(packages=installed_packages(prepared.venv), node=shutil.which("node") is not None)
    start = start_rules.choose(copy, installed, options)
    commands: dict[str, tuple[list[str], str]] = {}
    if start is not None:
        app_python = f"{layout.venv}/bin/python" if layout.venv else prepared.python.path
        words = {
            start_rules.PYTHON: [app_python],
            start_rules.NODE: [shutil.which("node") or "node"],
            start_rules.NPM: [shutil.which("npm") or "npm"],
            start_rules.SHELL: ["/bin/sh", "-c"],
        }
        port = str(ports["backend"])
        argv = [part for word in start.argv for part in words.get(word, [word.replace("{port}", port)])]
        commands["backend"] = (argv, f"{layout.app}/{start.folder}".removesuffix("/."))
    for folder in STATIC_FOLDERS:
        if (copy / "frontend" / folder / "index.html").is_file():
            served = f"{layout.app}/frontend/{folder}".removesuffix("/.")
            argv = [python, str(Path(layout.init).parent / STATIC_SERVER), str(ports["frontend"]), served]
            commands["frontend"] = (argv, served)
            break
    return commands, start


def _env(layout: Layout, ports: dict[str, int], own: str) -> dict[str, str]:
    return {
        "PATH": f"{layout.venv}/bin:/usr/local/bin:/usr/bin:/bin:{layout.bin}"
        if layout.venv
        else f"/usr/local/bin:/usr/bin:/bin:{layout.bin}",
        "HOME": layout.tmp,
        "TMPDIR": layout.tmp,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        # V8 reserves about 10 GiB of address space per WebAssembly memory for its trap handler's guard regions, more
        # than the sandbox's RLIMIT_AS allows: without this a Node app using WebAssembly (sql.js) dies at start.
        # Bounds are checked in code instead (Node 20.15 and later know the option).
        "NODE_OPTIONS": "--disable-wasm-trap-handler",
        "HOST": "127.0.0.1",
        "PORT": str(ports[own]),
        "BACKEND_PORT": str(ports["backend"]),
        "FRONTEND_PORT": str(ports["frontend"]),
    }


def _write_ports(copy: Path, ports: dict[str, int]) -> None:
    """The copy's .env names Assay's ports, for apps that read the file rather than the environment."""
    env_file = copy / ".env"
    lines = env_file.read_text(errors="replace").splitlines() if env_file.is_file() else []
    wanted = {"BACKEND_PORT": ports["backend"], "FRONTEND_PORT": ports["frontend"]}
    kept = [line for line in lines if line.partition("=")[0].strip().removeprefix("export ") not in wanted]
    env_file.write_text("\n".join([*kept, *(f"{key}={value}" for key, value in wanted.items())]) + "\n")


def _set_up_run(run_dir: Path, copy: Path, ports: dict[str, int], sandboxed: bool, python: str) -> None:
    """The run's temporary folder when unsandboxed (the sandbox keeps its own on its disk), a `python` for command
    lines that name it, and Assay's ports in the copy's .env."""
    if not sandboxed:
        (run_dir / "tmp").mkdir(parents=True, exist_ok=True)
    (run_dir / "bin").mkdir(exist_ok=True)
    for name in ("python", "python3"):
        (run_dir / "bin" / name).symlink_to(python)
    _write_ports(copy, ports)


async def launch(
    config: LaunchConfig, prepared: Prepared, run_dir: Path, options: dict[str, object] | None = None
) -> Launched:
    """Start the app's sandbox and forwarders; AppNotStarted when there is nothing to start."""
    # Sandboxed, each port's host side is a forwarder of Assay's own: its socket is bound now and held until the
    # forwarder listens on it (`_launch` takes out those it starts). Unsandboxed, the app binds the ports itself.
    reserved = (
        {name: reserve_port(port_range=config.port_range) for name in PORT_NAMES}
        if config.settings.mode == "bwrap"
        else {}
    )
    try:
        return await _launch(config, prepared, run_dir, options or {}, reserved)
    finally:
        for sock in reserved.values():
            sock.close()


async def _launch(
    config: LaunchConfig,
    prepared: Prepared,
    run_dir: Path,
    options: dict[str, object],
    reserved: dict[str, socket.socket],
) -> Launched:
    sandboxed = bool(reserved)
    layout = _layout(sandboxed, prepared, run_dir)
    ports = {
        name: reserved[name].getsockname()[1] if sandboxed else free_port(port_range=config.port_range)
        for name in PORT_NAMES
    }
    found, start = await asyncio.to_thread(_commands, prepared, layout, config.python, ports, options)
    if start is None:
        raise AppNotStarted(
            "app did not start: no start rule fits its backend/ (see start_rules.py; give a command as "
            f"{start_rules.START_KEY}=… in its .env or options.app.start)"
        )
    deps = await asyncio.to_thread(services_deps.arrange, prepared.copy, layout.app)
    argv, cwd = found["backend"]
    found["backend"] = (deps.wrap(argv), cwd)
    await asyncio.to_thread(_set_up_run, run_dir, prepared.copy, ports, sandboxed, prepared.python.path)
    disk_bytes = config.settings.disk_mb * 1024 * 1024
    channel = Channel()
    spec: dict[str, object] = {
        "limits": run_limits(config.settings),
        "control_fd": channel.inside.fileno(),
        "forwards": [{"name": name, "port": ports[name]} for name in [*found, "canary"]] if sandboxed else [],
        "canary": ports["canary"],
        "processes": [  # the app's servers first: the prelude of its backend waits for them
            *(
                {"name": name, "argv": argv, "cwd": layout.tmp, "env": _env(layout, ports, "backend")}
                for name, argv in deps.processes.items()
            ),
            *(
                {"name": name, "argv": argv, "cwd": cwd, "env": {**_env(layout, ports, name), **deps.env}}
                for name, (argv, cwd) in found.items()
            ),
        ],
    }
    if sandboxed:
        spec["copy"] = {"source": SOURCE_ROOT, "app": DISK_APP, "tmp": DISK_TMP}
        spec["disk"] = {"path": DISK_ROOT, "mb": config.settings.disk_mb}
    init_python = f"{layout.venv}/bin/python" if layout.venv else config.python
    command = [init_python, layout.init, json.dumps(spec)]
    if sandboxed:
        init = await asyncio.to_thread(init_binds, run_dir)
        ro_binds = {**init, run_dir / "bin": layout.bin, prepared.copy: SOURCE_ROOT}
        if prepared.venv:
            ro_binds[prepared.venv] = VENV_ROOT
        if prepared.node_modules:
            ro_binds[prepared.node_modules] = f"{DISK_APP}/frontend/node_modules"
        if prepared.backend_node_modules:
            ro_binds[prepared.backend_node_modules] = f"{DISK_APP}/backend/node_modules"
        mounts = Mounts(ro_binds=ro_binds, links={APP_ROOT: DISK_APP})
        command = bwrap_argv(mounts, network=False, chdir=APP_ROOT, command=command, disk_bytes=disk_bytes)
    output = run_dir / "output.log"
    process = await start_with_channel(command, output, channel)
    launched = Launched(
        process=process,
        command=command,
        processes={**deps.processes, **{name: argv for name, (argv, _) in found.items()}},
        urls={name: f"http://127.0.0.1:{ports[name]}" for name in found},
        output=output,
        channel=channel,
        canary_port=ports["canary"],
        start=start,
        dependencies=deps.notes,
    )
    if sandboxed:
        try:
            for name in [*found, "canary"]:
                launched.forwarders.append(await start_forwarder(reserved.pop(name), channel, name))
        except OSError as error:  # nothing may be left running
            await stop(launched)
            raise AppNotStarted(f"app did not start: its port could not be forwarded: {error}") from error
    return launched


def output_tail(launched: Launched) -> str:
    """The last part of what the app printed (only that part is read: the log may be as large as the disk
    quota)."""
    try:
        with launched.output.open("rb") as output:
            output.seek(max(0, output.seek(0, os.SEEK_END) - OUTPUT_TAIL))
            data = output.read(OUTPUT_TAIL)
    except OSError:
        return ""
    return data.decode(errors="replace")


def found_listening(launched: Launched) -> dict[str, list[str]]:
    """name → where each of the app's processes was found listening in its sandbox (inside.py's notes)."""
    return {
        key.removeprefix(LISTENS_NOTE): [where]
        for key, where in launched.channel.notes.items()
        if key.startswith(LISTENS_NOTE)
    }


async def exit_reason(launched: Launched) -> str:
    """Why the sandbox ended, as inside.py noted it over the channel (`backend ended with status 1`), else its own
    exit status."""
    await launched.channel.drained()
    note = launched.channel.notes.get("ended", "").strip()
    return note or f"the sandbox exited with status {launched.process.returncode}"


def _last_words(tail: str) -> str:
    """` (last output: MemoryError)`: the app's last error line before inside.py's own (the last line when none
    names an error). Several processes may write at once, a fork bomb's children each their traceback, and the last
    line written is then any of their frames."""
    lines = [
        line.strip() for line in tail.splitlines() if line.strip() and not line.startswith("assay-init: ")
    ]
    errors = [line for line in lines if ERROR_LINE.match(line)]
    last = (errors or lines)[-1:]
    return f" (last output: {last[0][:300]})" if last else ""


async def wait_ready(config: LaunchConfig, launched: Launched) -> None:
    """Until every URL answers (any HTTP status); AppNotStarted when the app exits or the start timeout passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.start_timeout_s
    pending = dict(launched.urls)
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        while pending:
            if launched.process.returncode is not None:
                tail = await asyncio.to_thread(output_tail, launched)
                reason = await exit_reason(launched)
                raise AppNotStarted(f"app did not start: {reason}{_last_words(tail)}")
            if loop.time() > deadline:
                raise AppNotStarted(
                    f"app did not start: {', '.join(pending.values())} did not answer within "
                    f"{config.start_timeout_s:g} s (ASSAY_APP_START_TIMEOUT_S)"
                )
            for name, url in list(pending.items()):
                try:
                    await client.get(url)
                    del pending[name]
                except httpx.HTTPError:
                    pass
            if pending:
                await asyncio.sleep(POLL_S)


async def stop(launched: Launched) -> None:
    """Stop the sandbox's whole process group and the forwarders; nothing of the app is left running."""
    for server in launched.forwarders:
        server.close()
    await stop_group(launched.process, STOP_GRACE_S)
    await _group_gone(launched.process.pid)
    await launched.channel.drained()  # its last note, if it ended by itself
    launched.channel.close()


async def _group_gone(pgid: int) -> None:
    """Until the last member of the group has exited. The sandbox's own init is one: it is reaped only after every
    process of its pid namespace is gone, so an empty group means nothing of the app is left."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GONE_WAIT_S
    while loop.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.02)
