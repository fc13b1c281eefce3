"""The Celery + Redis baseline as the benchmark runs it: Redis (see redis_server), the Litestar endpoint and a
Celery prefork worker with 2 processes, each a separate process, with its own SQLite file and results folder."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.celery_worker import QUEUE_VARIABLE
from benchmarks.processes import spawn, spawn_module
from benchmarks.redis_server import REDIS_URL_VARIABLE, Redis
from shared.jetstream.natsd import free_port
from tests.support.processes import ServiceDidNotStart, log_tail, stop, wait_for_port

WORKER_PROCESSES = 2


class CelerySystem:
    """Start with `start()`, stop with `stop()`; requests go to `submit_url`, rows land in `database_url`."""

    label = "Celery"

    def __init__(self, root: Path, apps_dir: Path) -> None:
        self.root = root
        self.apps_dir = apps_dir
        self.redis = Redis(root)
        self.http_port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.database_url = f"sqlite+aiosqlite:///{root / 'celery.db'}"
        self.results_dir = root / "results"
        self.queue = f"assay-bench-{secrets.token_hex(4)}"  # a shared Redis may hold other queues
        self.headers: dict[str, str] = {}  # the baseline's endpoint asks for no token

    @property
    def submit_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/api/analysis/run"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            REDIS_URL_VARIABLE: self.redis.url,
            QUEUE_VARIABLE: self.queue,
            "ASSAY_DATABASE_URL": self.database_url,
            "ASSAY_RESULTS_DIR": str(self.results_dir),
            "ASSAY_APPS_DIR": str(self.apps_dir),
        }

    def roles(self) -> dict[str, int]:
        """The pid of each running process, by role; the worker's pid stands for it and its children."""
        found = {role: process.pid for role, process in self.processes.items() if process.poll() is None}
        if self.redis.process is not None and self.redis.process.poll() is None:
            found["redis-server"] = self.redis.process.pid
        return found

    def start(self, timeout_s: float = 90.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.redis.start()
        env = self.env()
        logs = self.root / "logs"
        http_log = logs / "http.log"
        self.processes["http"] = spawn_module(
            "benchmarks.celery_gateway", ["--port", str(self.http_port)], env, http_log
        )
        wait_for_port(self.http_port, self.processes["http"], http_log, timeout_s)  # it has migrated by then
        worker = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "benchmarks.celery_worker",
            "worker",
            "--pool",
            "prefork",
        ]
        options = ["--concurrency", str(WORKER_PROCESSES), "--loglevel", "INFO", "--without-gossip"]
        worker_log = logs / "worker.log"
        self.processes["worker"] = spawn(
            [*worker, *options, "--without-mingle", "-Q", self.queue], env, worker_log
        )
        self._wait_worker_ready(worker_log, timeout_s)

    def _wait_worker_ready(self, log: Path, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        worker = self.processes["worker"]
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise ServiceDidNotStart(f"Celery worker exited with {worker.returncode}:\n{log_tail(log)}")
            if "ready." in log_tail(log, 20_000):
                return
            time.sleep(0.2)
        raise ServiceDidNotStart(f"Celery worker not ready after {timeout_s} s:\n{log_tail(log)}")

    def stop(self) -> None:
        for process in self.processes.values():
            stop(process)
        self.processes.clear()
        self.redis.stop()
