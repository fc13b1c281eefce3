"""One supervised process (a service, or an embedded nats-server): started in its own session, output forwarded
with its name, restarted with backoff when it dies, stopped with SIGTERM then SIGKILL."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence

from services.cli.roster import ServiceSpec
from shared.operations.parent_death import die_with_parent
from shared.operations.process_groups import stop_group

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 60.0  # a process that ran this long before dying starts the backoff over
LINE_LIMIT = 1 << 20  # one log line may be long (a traceback as JSON); beyond this it is cut


class Child:
    """A process the supervisor keeps running until `stop()`: `python -m <spec.module> <spec.args…>`, or `argv`."""

    def __init__(self, spec: ServiceSpec, env: Mapping[str, str], argv: Sequence[str] | None = None) -> None:
        self.spec = spec
        self.env = dict(env)
        self._argv = list(argv) if argv is not None else None
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._stopping = asyncio.Event()
        self._forwarder: asyncio.Task[None] | None = None

    @property
    def argv(self) -> list[str]:
        return self._argv or [sys.executable, "-m", self.spec.module, *self.spec.args]

    async def start(self) -> None:
        """Spawn the process. Its own session: a Ctrl-C at the terminal reaches the supervisor only, which then
        stops the services in order; a supervisor killed outright (-9, the OOM killer) stops them by SIGTERM."""
        supervisor = os.getpid()
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: die_with_parent(supervisor, signal.SIGTERM),
            limit=LINE_LIMIT,
        )
        assert self.process.stdout is not None
        self._forwarder = asyncio.create_task(forward_lines(self.spec.name, self.process.stdout))
        log.info("started %s", self.spec.name, extra={"child": self.spec.name, "pid": self.process.pid})

    async def supervise(self) -> None:
        """Wait for the process; when it dies on its own, restart it after 1, 2, 4 … 30 s."""
        delay = BACKOFF_FIRST_S
        while True:
            assert self.process is not None
            started = time.monotonic()
            code = await self.process.wait()
            if self._forwarder is not None:
                await self._forwarder
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STABLE_AFTER_S:
                delay = BACKOFF_FIRST_S
            log.warning(
                "%s exited with code %s; restarting in %g s",
                self.spec.name,
                code,
                delay,
                extra={"child": self.spec.name, "exit_code": code},
            )
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
                return  # asked to stop while waiting to restart
            except TimeoutError:
                pass
            delay = min(delay * 2, BACKOFF_MAX_S)
            self.restarts += 1
            await self.start()

    async def stop(self, grace_s: float) -> None:
        """SIGTERM the process group, wait up to `grace_s`, then SIGKILL it."""
        self._stopping.set()
        process = self.process
        if process is None or process.returncode is not None:
            return
        if await stop_group(process, grace_s):
            log.warning("%s did not stop within %g s; killed it", self.spec.name, grace_s)
        if self._forwarder is not None:
            await self._forwarder
        log.info(
            "stopped %s (exit code %s)", self.spec.name, process.returncode, extra={"child": self.spec.name}
        )


async def forward_lines(name: str, stream: asyncio.StreamReader) -> None:
    """Copy a child's output to our stderr, each line prefixed with the service name."""
    prefix = f"[{name}] ".encode()
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line over LINE_LIMIT: asyncio has dropped it
            line = b"(a line longer than %d bytes was cut)\n" % LINE_LIMIT
        if not line:
            return
        sys.stderr.buffer.write(prefix + line if line.endswith(b"\n") else prefix + line + b"\n")
        sys.stderr.buffer.flush()
