"""One preparation step (virtualenv, pip, npm) confined as tightly as the app's run.

The same sandbox as the run (sandbox.py): no network of its own, the run's limits (processes, memory, CPU, open
files, the largest file), the app's copy read-only and copied onto a disk of `ASSAY_APP_DISK_MB` with /tmp, the
step's wall time; the only folder of the host it may write is the one being built (the virtualenv at /venv, the
frontend's at /build). Its one way out is the package index proxy (index_proxy.py), reached on
127.0.0.1:PROXY_PORT inside, relayed by inside.py to the proxy's socket, bound read-only from a folder only the
orchestrator writes. The step's output goes to a file there (bounded by the largest-file limit) and only its tail
is read back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from services.orchestrator.apps.channel import Channel, start_with_channel
from services.orchestrator.apps.index_proxy import IndexProxy
from services.orchestrator.apps.prepare_log import whole_file
from services.orchestrator.apps.quota import first_over
from services.orchestrator.apps.sandbox import (
    APP_ROOT,
    DISK_APP,
    DISK_ROOT,
    DISK_TMP,
    INIT_PATH,
    SOURCE_ROOT,
    Mounts,
    bwrap_argv,
    init_binds,
    run_limits,
)
from shared.operations.process_groups import stop_group
from shared.wire.app_run import SandboxSettings

PROXY_PORT = 3128
PROXY_SOCKET = "/assay/index.sock"
PROXY_URL = f"http://127.0.0.1:{PROXY_PORT}"
STOP_GRACE_S = 1.0


@dataclass(frozen=True)
class PrepBox:
    """How preparation steps are confined: the run's limits, the index hosts, the interpreter of the init."""

    settings: SandboxSettings
    index_hosts: frozenset[str]
    python: str
    timeout_s: float


@dataclass(frozen=True)
class StepOutcome:
    argv: list[str]
    exit_code: int | None  # None when it ran out of time
    output: str  # the step's output (prepare_log.whole_file), then how it ended and what the proxy refused
    duration_s: float

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None


def proxy_env() -> dict[str, str]:
    """What makes pip (and anything else that reads these) use the index proxy inside the sandbox."""
    return {name: PROXY_URL for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")}


def _work_folder(parent: Path) -> Path:
    """A folder only the orchestrator writes (searchable by the sandbox user, to bind from), for the step's init,
    output and the proxy's socket."""
    work = parent / f".step-{secrets.token_hex(4)}"
    work.mkdir(parents=True)
    work.chmod(0o711)
    return work


async def run_step(
    box: PrepBox,
    *,
    name: str,
    command: list[str],
    cwd: str,
    env: dict[str, str],
    writable: dict[Path, str],
    source: Path | None,
    work_parent: Path,
) -> StepOutcome:
    """Run `command` in a preparation sandbox: `writable` host folders bound writable, the app's copy `source`
    (if any) on its disk at /app, the index proxy its only network."""
    started = time.monotonic()
    work = await asyncio.to_thread(_work_folder, work_parent)
    proxy = IndexProxy(box.index_hosts)
    channel = Channel()
    try:
        await proxy.start(work / "index.sock")
        spec: dict[str, object] = {
            "limits": run_limits(box.settings),
            "control_fd": channel.inside.fileno(),
            "forwards": [],
            "processes": [{"name": name, "argv": command, "cwd": cwd, "env": {**env, **proxy_env()}}],
            "disk": {"path": DISK_ROOT, "mb": box.settings.disk_mb},
            "relay": {"port": PROXY_PORT, "socket": PROXY_SOCKET},
        }
        init = await asyncio.to_thread(init_binds, work)
        ro_binds = {**init, work / "index.sock": PROXY_SOCKET}
        if source is not None:
            spec["copy"] = {"source": SOURCE_ROOT, "app": DISK_APP, "tmp": DISK_TMP}
            ro_binds[source] = SOURCE_ROOT
        mounts = Mounts(binds=writable, ro_binds=ro_binds, links={APP_ROOT: DISK_APP})
        argv = bwrap_argv(
            mounts,
            network=False,
            chdir="/",
            command=[box.python, INIT_PATH, json.dumps(spec)],
            disk_bytes=box.settings.disk_mb * 1024 * 1024,
        )
        process = await start_with_channel(argv, work / "output.log", channel)
        exit_code, over = await _wait(process, box, list(writable))
        await channel.drained()
        lines = [await asyncio.to_thread(whole_file, work / "output.log")]
        if over:
            quota = f"its disk quota of {box.settings.disk_mb} MB (ASSAY_APP_DISK_MB)"
            lines.append(f"[{name}: stopped, the folder it builds passed {quota}]")
            exit_code = exit_code or -signal.SIGKILL
        elif exit_code is None:
            lines.append(f"[{name}: stopped, its {box.timeout_s:g} s ran out (ASSAY_APP_PREPARE_TIMEOUT_S)]")
        elif exit_code != 0 and (note := channel.notes.get("ended")):
            lines.append(f"[{note}]")  # the output's tail may be flooded: the note says it again
        lines += [f"[the index proxy refused {what}]" for what in proxy.refused]
        output = "\n".join(line.rstrip("\n") for line in lines if line) + "\n"
        return StepOutcome(
            argv=command, exit_code=exit_code, output=output, duration_s=round(time.monotonic() - started, 3)
        )
    finally:
        channel.close()
        proxy.close()
        await asyncio.to_thread(shutil.rmtree, work, True)


async def _wait(
    process: asyncio.subprocess.Process, box: PrepBox, built: list[Path]
) -> tuple[int | None, bool]:
    """The step's exit status (None when its time ran out) and whether a folder it builds passed the disk quota;
    the sandbox is stopped in either case."""
    finished = asyncio.ensure_future(process.wait())
    watching = asyncio.ensure_future(first_over(built, box.settings.disk_mb * 1024 * 1024))
    try:
        done, _ = await asyncio.wait(
            {finished, watching}, timeout=box.timeout_s, return_when="FIRST_COMPLETED"
        )
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            await asyncio.shield(stop_group(process, STOP_GRACE_S))
        raise
    finally:
        watching.cancel()
    if finished in done:
        return finished.result(), False
    await stop_group(process, STOP_GRACE_S)
    finished.cancel()
    return None, watching in done
