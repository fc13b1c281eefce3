"""Assay as the benchmark runs it: its own nats-server, the real gateway, N orchestrator replicas, the persister
and one analyzer (the no-op one by default), each a separate process on free loopback ports, with its own SQLite
file, results folder, span files and logs under one folder.

Locked down as `assay up` runs it: the nats-server admits only Assay's users, the streams are declared as `admin`,
and each service gets only its own NATS credentials and, where it needs it, the analyzer token."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from pathlib import Path

import httpx

from benchmarks.processes import spawn, spawn_module
from services.cli.credentials import child_env
from services.cli.roster import ServiceSpec
from shared.jetstream.connection import connect
from shared.jetstream.nats_users import (
    ADMIN,
    GATEWAY,
    ORCHESTRATOR,
    PERSISTER,
    creds_of,
    generate_credentials,
)
from shared.jetstream.natsd import EmbeddedNats, free_port
from shared.jetstream.streams import declare_all
from shared.operations.config import load_settings
from shared.store.database import create_engine, migrate, sessions
from shared.store.tokens import create_token
from tests.support.processes import ServiceDidNotStart, log_tail, stop, wait_for_port

NOOP_ANALYZER = "benchmarks.noop_analyzer"


class AssaySystem:
    """Start with `start()`, stop with `stop()`; requests go to `submit_url`, rows land in `database_url`."""

    label = "Assay"

    def __init__(
        self,
        root: Path,
        apps_dir: Path,
        *,
        replicas: int = 1,
        analyzer_module: str = NOOP_ANALYZER,
        service: str = "static",
        extra_env: dict[str, str] | None = None,
        other_analyzers: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.apps_dir = apps_dir
        self.replicas = replicas
        self.analyzer_module = analyzer_module
        self.service = service  # the analyzer's: the orchestrator sends it the requests of that service
        self.extra_env = extra_env or {}
        # more analyzers beside the first, by service (`services.analyzers.<service>`), roles `analyzer-<service>`
        self.other_ports = {other: free_port() for other in other_analyzers}
        self.credentials = generate_credentials()
        self.analyzer_token = secrets.token_urlsafe(32)
        self.nats = EmbeddedNats(root / "nats", credentials=self.credentials)
        self.gateway_port = free_port()
        self.analyzer_port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.database_url = f"sqlite+aiosqlite:///{root / 'assay.db'}"
        self.headers: dict[str, str] = {}  # the API token the load generator sends, made at start
        self.results_dir = root / "results"

    @property
    def submit_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}/api/analysis/run"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "ASSAY_NATS_URL": self.nats.url,
            "ASSAY_VAR_DIR": str(self.root / "var"),
            "ASSAY_DATABASE_URL": self.database_url,
            "ASSAY_RESULTS_DIR": str(self.results_dir),
            "ASSAY_APPS_DIR": str(self.apps_dir),
            "ASSAY_TRACE_DIR": str(self.root / "traces"),
            "ASSAY_GATEWAY_URL": f"http://127.0.0.1:{self.gateway_port}",
            f"ASSAY_{self.service.upper()}_URLS": f"ws://127.0.0.1:{self.analyzer_port}",
            **{
                f"ASSAY_{other.upper()}_URLS": f"ws://127.0.0.1:{port}"
                for other, port in self.other_ports.items()
            },
            **self.extra_env,
        }
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            env.pop(name, None)
        return env

    def roles(self) -> dict[str, int]:
        """The pid of each running process, by role (orchestrator replicas numbered)."""
        return {role: process.pid for role, process in self.processes.items() if process.poll() is None}

    def start(self, timeout_s: float = 90.0) -> None:
        env = self.env()
        self.root.mkdir(parents=True, exist_ok=True)
        self.nats.store_dir.mkdir(parents=True, exist_ok=True)
        self.processes["nats-server"] = spawn(self.nats.argv(), env, self.root / "logs" / "nats.log")
        wait_for_port(self.nats.port, self.processes["nats-server"], self.nats.log_file, timeout_s)
        asyncio.run(self._declare())
        self.headers = {"Authorization": f"Bearer {asyncio.run(self._submit_token())}"}
        self._spawn(ServiceSpec("persister", "services.persister", nats_user=PERSISTER))
        analyzer_args = ("--port", str(self.analyzer_port))
        self._spawn(ServiceSpec("analyzer", self.analyzer_module, analyzer_args, analyzer_token=True))
        for other, port in self.other_ports.items():
            module, args = f"services.analyzers.{other}", ("--port", str(port))
            self._spawn(ServiceSpec(f"analyzer-{other}", module, args, analyzer_token=True))
        for index in range(self.replicas):
            role = "orchestrator" if self.replicas == 1 else f"orchestrator-{index + 1}"
            self._spawn(
                ServiceSpec(role, "services.orchestrator", nats_user=ORCHESTRATOR, analyzer_token=True)
            )
        self._spawn(ServiceSpec("gateway", "services.gateway", nats_user=GATEWAY))
        wait_for_port(
            self.analyzer_port, self.processes["analyzer"], self.root / "logs" / "analyzer.log", timeout_s
        )
        for other, port in self.other_ports.items():
            role = f"analyzer-{other}"
            wait_for_port(port, self.processes[role], self.root / "logs" / f"{role}.log", timeout_s)
        self._wait_ready(timeout_s)

    def _spawn(self, spec: ServiceSpec) -> None:
        """Start one service with its own secrets, as the supervisor does."""
        env = child_env(self.env(), spec, self.credentials, self.analyzer_token)
        log = self.root / "logs" / f"{spec.name}.log"
        self.processes[spec.name] = spawn_module(spec.module, list(spec.args), env, log)

    async def _submit_token(self) -> str:
        """A `submit` API token in the database, as `assay token create` makes one (the gateway requires it)."""
        engine = create_engine(self.database_url)
        try:
            await migrate(engine)
            token, _row = await create_token(sessions(engine), "bench", "submit")
            return token
        finally:
            await engine.dispose()

    async def _declare(self) -> None:
        settings = load_settings(self.env())
        admin = await connect(self.nats.url, "bench-setup", creds_of(self.credentials, ADMIN))
        try:
            await declare_all(admin.jetstream(), settings.ack_wait_s, settings.max_deliver)
        finally:
            await admin.close()

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.gateway_port}/readyz"
        while time.monotonic() < deadline:
            for role, process in self.processes.items():
                if process.poll() is not None:
                    log = self.root / "logs" / f"{role}.log"
                    raise ServiceDidNotStart(
                        f"Assay {role} exited with {process.returncode}:\n{log_tail(log)}"
                    )
            try:
                if httpx.get(url, timeout=1, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ServiceDidNotStart(
            f"Assay gateway not ready after {timeout_s} s (logs in {self.root / 'logs'})"
        )

    def stop(self) -> None:
        """Stop the services first, nats-server last (they drain to it)."""
        for role in [role for role in self.processes if role != "nats-server"]:
            stop(self.processes[role])
        if "nats-server" in self.processes:
            stop(self.processes["nats-server"])
        self.processes.clear()
