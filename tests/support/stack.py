"""The real Assay stack for end-to-end tests: each service a separate process, its own nats-server on a free port
(or, with `nats_nodes=3`, a three-node JetStream cluster whose every URL the services get), its own SQLite file,
results folder and span files. Processes can be killed one by one, and nats-server nodes started again.

Locked down as `assay up` runs it: the nats-server admits only Assay's users, the streams are declared as
`admin`, and each service gets only its own credentials and the analyzer token (services/cli/credentials.py)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from services.cli.credentials import child_env
from services.cli.roster import ServiceSpec
from shared.jetstream.connection import connect
from shared.jetstream.nats_cluster import NatsCluster
from shared.jetstream.nats_users import (
    ADMIN,
    GATEWAY,
    ORCHESTRATOR,
    PERSISTER,
    creds_of,
    generate_credentials,
)
from shared.jetstream.natsd import EmbeddedNats
from shared.jetstream.streams import declare_all
from shared.operations.config import load_settings
from shared.wire.messages import TERMINAL_STATUSES
from tests.support.ports import WORKER_RANGE, free_port
from tests.support.processes import wait_for_port
from tests.support.static import TOOL_CACHE_DIR

REPO = Path(__file__).resolve().parents[2]


def create_token_direct(env: Mapping[str, str], name: str, scope: str = "admin") -> str:
    """A token made by the real CLI in the database `env` names; the token is the last line it prints."""
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "token", "create", name, "--scope", scope, "--direct"],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


class Stack:
    """Start with `start()`, stop with `stop()`; `env` is what every service process sees."""

    def __init__(
        self,
        root: Path,
        *,
        apps_dir: Path,
        analyzers: Mapping[str, int] = {"static": 1},
        analyzer_modules: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        nats_nodes: int = 1,
        orchestrators: int = 1,
    ) -> None:
        """`analyzer_modules`: the module to run for an analyzer instead of `services.analyzers.<name>` (a fast
        stand-in of the same service, e.g. `{"static": "tests.support.faults.analyzer"}`)."""
        self.root = root
        self.credentials = generate_credentials()
        self.analyzer_token = secrets.token_urlsafe(16)
        self.nats: EmbeddedNats | NatsCluster
        if nats_nodes > 1:
            self.nats = NatsCluster(
                root / "nats", nats_nodes, credentials=self.credentials, port_range=WORKER_RANGE
            )
            # processes["nats-<i>"] is node i
            self.nats_servers = {f"nats-{i}": node for i, node in enumerate(self.nats.nodes)}
        else:
            self.nats = EmbeddedNats(root / "nats", credentials=self.credentials, port_range=WORKER_RANGE)
            self.nats_servers = {"nats": self.nats}
        self.orchestrators = orchestrators
        self.gateway_port = free_port()
        self.analyzer_ports = {name: [free_port() for _ in range(count)] for name, count in analyzers.items()}
        self.analyzer_modules = {name: f"services.analyzers.{name}" for name in analyzers}
        self.analyzer_modules.update(analyzer_modules or {})
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.specs: dict[str, ServiceSpec] = {}  # how each service was started, to start it again
        self.token = ""  # an admin token, made with `assay token create --direct` before the gateway starts
        self.metrics_ports: dict[
            str, int
        ] = {}  # /metrics of each service but the gateway, kept across restarts
        self.logs = root / "logs"
        self.env = {
            **os.environ,
            "ASSAY_NATS_URL": self.nats.url,
            "ASSAY_VAR_DIR": str(root / "var"),
            "ASSAY_TOOL_CACHE_DIR": TOOL_CACHE_DIR,
            "ASSAY_DATABASE_URL": f"sqlite+aiosqlite:///{root / 'assay.db'}",
            "ASSAY_RESULTS_DIR": str(root / "results"),
            "ASSAY_APPS_DIR": str(apps_dir),
            "ASSAY_TRACE_DIR": str(root / "traces"),
            "ASSAY_GATEWAY_URL": f"http://127.0.0.1:{self.gateway_port}",
            "ASSAY_LOG_LEVEL": "INFO",
            **{
                f"ASSAY_{name.upper()}_URLS": ",".join(f"ws://127.0.0.1:{port}" for port in ports)
                for name, ports in self.analyzer_ports.items()
            },
        }
        # Span files unless the test brings its own collector in `extra_env`, never the developer's collector.
        for name in (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        ):
            self.env.pop(name, None)
        self.env.update(extra_env or {})

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    @property
    def database_file(self) -> Path:
        return self.root / "assay.db"

    @property
    def trace_dir(self) -> Path:
        return self.root / "traces"

    def creds(self, user: str) -> str:
        """ASSAY_NATS_CREDS of one of the server's users (tests connect as `admin` to look behind the scenes)."""
        return creds_of(self.credentials, user)

    def spawn(self, spec: ServiceSpec) -> subprocess.Popen[bytes]:
        """Start one service with its own secrets, as the supervisor would."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log = (self.logs / f"{spec.name}.log").open("ab")
        env = child_env(self.env, spec, self.credentials, self.analyzer_token)
        if spec.name != "gateway":  # the gateway serves /metrics on its own port
            self.metrics_ports.setdefault(spec.name, free_port())
            env["ASSAY_METRICS_PORT"] = str(self.metrics_ports[spec.name])
        self.specs[spec.name] = spec
        process = subprocess.Popen(
            [sys.executable, "-m", spec.module, *spec.args],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[spec.name] = process
        return process

    def start_nats(self, name: str) -> None:
        """Start nats-server `name` (`nats`, or a cluster's `nats-<i>`) on its port and store; again after a kill."""
        server = self.nats_servers[name]
        self.processes[name] = subprocess.Popen(
            server.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_for_port(server.port, self.processes[name], timeout_s=20)

    def start(self) -> None:
        """Start every part and wait until the gateway is ready; a part that fails to start stops the others (a
        caller that starts outside its `try` would otherwise leave them running)."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for name in self.nats_servers:
            self.start_nats(name)
        asyncio.run(self._declare())
        self.token = create_token_direct(self.env, "stack")
        self.spawn(ServiceSpec("persister", "services.persister", nats_user=PERSISTER))
        for name, ports in self.analyzer_ports.items():
            for index, port in enumerate(ports):
                module = self.analyzer_modules[name]
                self.spawn(ServiceSpec(f"{name}-{index}", module, ("--port", str(port)), analyzer_token=True))
        for index in range(self.orchestrators):
            name = "orchestrator" if index == 0 else f"orchestrator-{index}"
            self.spawn(
                ServiceSpec(name, "services.orchestrator", nats_user=ORCHESTRATOR, analyzer_token=True)
            )
        self.spawn(ServiceSpec("gateway", "services.gateway", nats_user=GATEWAY))
        for name, ports in self.analyzer_ports.items():
            for index, port in enumerate(ports):
                self.wait_listening(f"{name}-{index}", port)
        self.wait_ready()

    def wait_listening(self, name: str, port: int, timeout_s: float = 20.0) -> None:
        """Until service `name`'s own process listens on `port` (raises, with its log, if it exits first)."""
        wait_for_port(port, self.processes[name], self.logs / f"{name}.log", timeout_s)

    def restart(self, name: str) -> None:
        """Start a service or a nats-server (`nats`, `nats-<i>`) that was killed or stopped, as it was first."""
        if name in self.nats_servers:
            self.start_nats(name)
        else:
            self.spawn(self.specs[name])

    async def _declare(self) -> None:
        settings = load_settings(self.env)
        admin = await connect(self.nats.url, "stack-setup", self.creds(ADMIN))
        try:
            await declare_all(
                admin.jetstream(), settings.ack_wait_s, settings.max_deliver, settings.jetstream
            )
        finally:
            await admin.close()

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.gateway_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"gateway not ready after {timeout_s} s; logs:\n{self.log_tail()}")

    def kill(self, name: str) -> None:
        """SIGKILL one process (and its group): a crash, not a clean stop."""
        process = self.processes[name]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)

    def terminate(self, name: str, timeout_s: float = 60.0) -> None:
        """SIGTERM one process and wait until it has exited: a clean stop, as an operator's restart does."""
        process = self.processes[name]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=timeout_s)

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for log in sorted(self.logs.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(parts)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def metrics_url(self, name: str) -> str:
        """Where service `name` (as spawned: `persister`, `static-0`, `gateway`…) answers Prometheus scrapes."""
        if name == "gateway":
            return f"{self.gateway_url}/metrics"
        return f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"

    def submit(self, **body: Any) -> str:
        response = httpx.post(
            f"{self.gateway_url}/api/analysis/run", json=body, headers=self.headers, timeout=10
        )
        assert response.status_code == 202, response.text
        task_id: str = response.json()["task_id"]
        return task_id

    def task(self, task_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.gateway_url}/api/tasks/{task_id}", headers=self.headers, timeout=10)
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        return task

    def wait_terminal(self, task_id: str, timeout_s: float = 240.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            task = self.task(task_id)
            if task["status"] in TERMINAL_STATUSES:
                return task
            time.sleep(0.25)
        raise TimeoutError(f"task {task_id} not terminal after {timeout_s} s; logs:\n{self.log_tail()}")


async def stream_leader(stack: Stack, stream: str) -> str:
    """The stack's process name (`nats-<i>`) of the cluster node leading `stream`."""
    nc = await connect(stack.nats.url, "test-admin", stack.creds(ADMIN))
    try:
        info = await nc.jetstream().stream_info(stream)
    finally:
        await nc.close()
    assert info.cluster is not None and info.cluster.leader
    return "nats-" + info.cluster.leader.rsplit("-", 1)[1]


@contextmanager
def one_app_stack(root: Path, model: str, app: int, backend_py: str) -> Iterator[Stack]:
    """A running stack with one static analyzer over one app whose `backend/app.py` is `backend_py`."""
    backend = root / "apps" / model / f"app{app}" / "backend"
    backend.mkdir(parents=True)
    (backend / "app.py").write_text(backend_py)
    stack = Stack(root / "stack", apps_dir=root / "apps", analyzers={"static": 1})
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def run_assay(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """`assay …` as a subprocess against the stack, with its admin token; its output captured (not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=REPO,
        env={**stack.env, "ASSAY_TOKEN": stack.token},
        capture_output=True,
        text=True,
        timeout=300,
    )
