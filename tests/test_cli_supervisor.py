"""`assay up` for real: an embedded nats-server, every service that exists as its own process, the gateway ready;
SIGINT stops all of it with exit code 0, and a second run comes back on the same data. Plus the restart backoff
of one supervised child."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from services.cli.api_token import token_file
from services.cli.child import Child
from services.cli.credentials import analyzer_token_file
from services.cli.roster import ServiceSpec
from shared.jetstream.nats_users import ADMIN, credentials_file, load_credentials
from shared.jetstream.streams import KV_STREAM
from shared.operations.config import ANALYZERS, load_settings
from shared.wire import subjects
from shared.wire.messages import TERMINAL_STATUSES
from tests.support.ports import free_port

REPO = Path(__file__).resolve().parent.parent
MODEL, APP = "openai_codex-mini", 1


def up_env(root: Path) -> dict[str, str]:
    (root / "apps" / MODEL / f"app{APP}").mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ASSAY_", "OTEL_EXPORTER_OTLP"))  # nothing configured: the embedded defaults
    }
    env |= {
        "PYTHONPATH": str(REPO),  # this checkout's code, whichever one the interpreter has installed
        "ASSAY_VAR_DIR": str(root / "var"),
        "ASSAY_RESULTS_DIR": str(root / "results"),
        "ASSAY_APPS_DIR": str(root / "apps"),
        "ASSAY_GATEWAY_URL": f"http://127.0.0.1:{free_port()}",
        "XDG_CONFIG_HOME": str(root / "config"),  # where `assay up` saves the CLI's token
        "ASSAY_METRICS_PORT_BASE": str(
            free_ports_in_a_row(len(ANALYZERS) + 3)
        ),  # the /metrics ports count up
        **{f"ASSAY_{name.upper()}_URLS": f"ws://127.0.0.1:{free_port()}" for name in ANALYZERS},
    }
    return env


def free_ports_in_a_row(count: int) -> int:
    """The first of `count` consecutive free ports below the kernel's ephemeral range: `assay up` counts the
    services' /metrics ports up from one base, and inside that range any outgoing connection of the machine may
    take one of them meanwhile (seen: a /metrics listener refused with "address already in use")."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        base = random.randrange(10_000, low - count)
        if all(_bindable(port) for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports found below {low}")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Up:
    """One `assay up` process with its output in files."""

    def __init__(self, root: Path, env: dict[str, str], run: int, *args: str) -> None:
        self.url = env["ASSAY_GATEWAY_URL"]
        self.stdout = root / f"up-{run}.out"
        self.stderr = root / f"up-{run}.err"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "up", *args],
                cwd=root,
                env=env,
                stdout=out,
                stderr=err,
            )

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until the supervisor announces the gateway (it does once /readyz answers 200)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"assay up exited early:\n{self.stderr.read_text()[-3000:]}"
            if f"Assay is up: {self.url}" in self.stdout.read_text():
                return
            time.sleep(0.2)
        raise TimeoutError(f"assay up not ready after {timeout_s} s:\n{self.stderr.read_text()[-3000:]}")

    def children(self) -> dict[str, int]:
        """Latest pid of each child, from the supervisor's JSON log lines."""
        pids = {}
        for line in self.stderr.read_text().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if "child" in entry and "pid" in entry:
                    pids[entry["child"]] = entry["pid"]
        return pids

    def interrupt(self, timeout_s: float = 90.0) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def saved_token(env: dict[str, str]) -> dict[str, str]:
    """The Authorization header with the token `assay up` saved for the CLI."""
    settings = load_settings(env)
    return {"Authorization": f"Bearer {token_file(settings).read_text().strip()}"}


def scrape(url: str, headers: dict[str, str], timeout_s: float = 60.0) -> httpx.Response:
    """GET a /metrics endpoint, waiting for its listener: the gateway is ready before every other service is."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return httpx.get(url, headers=headers, timeout=10)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.stack  # `assay up` as a process: its own supervisor, nats-server and services
def test_up_starts_the_stack_stops_it_on_sigint_and_restarts_on_the_same_data(tmp_path: Path) -> None:
    env = up_env(tmp_path)
    first = Up(tmp_path, env, 1)
    try:
        first.wait_ready()
        assert httpx.get(f"{first.url}/readyz", timeout=5).status_code == 200
        body = {"model_slug": MODEL, "app_number": APP, "analysis_type": "static", "tools": ["ruff"]}
        anonymous = httpx.post(f"{first.url}/api/analysis/run", json=body, timeout=10)
        assert anonymous.status_code == 401
        token_saved = saved_token(env)
        # The supervisor lists every service's /metrics; each answers in the Prometheus text format.
        [listed] = [line for line in first.stdout.read_text().splitlines() if line.startswith("Metrics: ")]
        endpoints = dict(entry.split(" ", 1) for entry in listed.removeprefix("Metrics: ").split(", "))
        assert {"gateway", "persister", "orchestrator", *ANALYZERS} == set(endpoints)
        for name, url in endpoints.items():
            scraped = scrape(url, token_saved if name == "gateway" else {})
            assert scraped.status_code == 200, (name, scraped.text)
            assert "# TYPE " in scraped.text, name
        # The quick start: after `assay up`, the CLI needs no token step (it reads the saved file).
        analyze = subprocess.run(
            [sys.executable, "-m", "services.cli", "analyze", MODEL, str(APP), "--tools", "ruff"],
            cwd=tmp_path,
            env={key: value for key, value in env.items() if key != "ASSAY_TOKEN"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert analyze.returncode == 0, analyze.stderr
        task_id = analyze.stdout.strip()
        children = first.children()
    finally:
        code = first.interrupt()

    assert code == 0, first.stderr.read_text()[-3000:]
    # The secrets of the run: readable by the owner only, and in no log line of any service.
    var = tmp_path / "var"
    made = [*load_credentials(var).values(), analyzer_token_file(var).read_text()]
    for path in (credentials_file(var), analyzer_token_file(var), var / "nats" / "nats-server.conf"):
        assert path.stat().st_mode & 0o077 == 0, path
    logged = first.stdout.read_text() + first.stderr.read_text()
    assert '"child": "gateway"' in logged or "[gateway]" in logged  # the services' lines are in there
    assert [secret for secret in made if secret in logged] == []
    assert {"nats-server", "gateway"} <= set(children)
    assert [name for name, pid in children.items() if alive(pid)] == []
    assert (tmp_path / "var" / "nats" / "jetstream").is_dir()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{first.url}/healthz", timeout=1)

    second = Up(tmp_path, env, 2)
    try:
        second.wait_ready()
        again = httpx.get(f"{second.url}/api/tasks/{task_id}", headers=saved_token(env), timeout=10)
    finally:
        code = second.interrupt()

    assert code == 0, second.stderr.read_text()[-3000:]
    # the first run's task is still known: same streams, same database
    assert again.status_code == 200, again.text
    assert again.json()["task_id"] == task_id
    assert [name for name, pid in second.children().items() if alive(pid)] == []
    assert saved_token(env) == token_saved  # the second run kept the token that still works


async def stream_replicas(url: str, admin_password: str) -> dict[str, int]:
    nc = await nats.connect(servers=url.split(","), user=ADMIN, password=admin_password)
    try:
        js = nc.jetstream()
        names = [subjects.REQUESTS_STREAM, subjects.EVENTS_STREAM, subjects.DLQ_STREAM, KV_STREAM]
        return {name: (await js.stream_info(name)).config.num_replicas or 0 for name in names}
    finally:
        await nc.close()


def analyze_and_wait(url: str, env: dict[str, str]) -> dict[str, Any]:
    """Submit a ruff analysis through the gateway and poll it until it ends."""
    body = {"model_slug": MODEL, "app_number": APP, "analysis_type": "static", "tools": ["ruff"]}
    task = httpx.post(f"{url}/api/analysis/run", json=body, headers=saved_token(env), timeout=60)
    assert task.status_code == 202, task.text
    deadline = time.monotonic() + 120
    while True:
        status = httpx.get(f"{url}/api/tasks/{task.json()['task_id']}", headers=saved_token(env), timeout=10)
        found: dict[str, Any] = status.json()
        if found["status"] in TERMINAL_STATUSES:
            return found
        assert time.monotonic() < deadline, status.text
        time.sleep(0.25)


@pytest.mark.stack  # `assay up` as a process: its own supervisor, nats-server and services
def test_up_with_cluster_3_runs_the_stack_on_three_nats_nodes_and_restarts_a_dead_one(tmp_path: Path) -> None:
    env = up_env(tmp_path)
    run = Up(tmp_path, env, 1, "--cluster", "3")
    try:
        run.wait_ready(timeout_s=120)
        children = run.children()
        nodes = sorted(name for name in children if name.startswith("nats-server-"))
        assert nodes == ["nats-server-0", "nats-server-1", "nats-server-2"]
        urls = [
            json.loads(line)["msg"].rsplit(" ", 1)[-1]
            for line in run.stderr.read_text().splitlines()
            if line.startswith("{") and "embedded nats-server listening" in line
        ]
        password = load_credentials(tmp_path / "var")[ADMIN]
        replicas = asyncio.run(stream_replicas(",".join(urls), password))
        assert set(replicas.values()) == {3}, replicas
        assert analyze_and_wait(run.url, env)["status"] == "completed"

        os.kill(children["nats-server-1"], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while (again := run.children()["nats-server-1"]) == children["nats-server-1"] or not alive(again):
            assert time.monotonic() < deadline, "the supervisor did not start the dead node again"
            time.sleep(0.2)
        assert analyze_and_wait(run.url, env)["status"] == "completed"
        assert "nats-server-1 exited with code -9" in run.stderr.read_text()
    finally:
        code = run.interrupt()
    assert code == 0, run.stderr.read_text()[-3000:]
    assert [name for name, pid in run.children().items() if alive(pid)] == []
    for index in range(3):
        assert (tmp_path / "var" / "nats-cluster" / f"node-{index}" / "jetstream").is_dir()


async def test_a_child_that_dies_is_restarted_after_1_then_2_seconds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "crashy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(
        "import sys\nprint('crashy gives up', file=sys.stderr)\nsys.exit(3)\n"
    )
    child = Child(ServiceSpec("crashy", "crashy"), {**os.environ, "PYTHONPATH": str(tmp_path)})
    caplog.set_level(logging.INFO, logger="services.cli.child")

    await child.start()
    supervising = asyncio.create_task(child.supervise())
    deadline = asyncio.get_running_loop().time() + 20
    while child.restarts < 2:
        assert asyncio.get_running_loop().time() < deadline, "the child was not restarted twice"
        await asyncio.sleep(0.05)
    await child.stop(grace_s=5)
    await asyncio.wait_for(supervising, 5)  # stopping ends the supervision, even in the middle of a backoff

    starts = [record.created for record in caplog.records if record.getMessage() == "started crashy"]
    exits = [record for record in caplog.records if "exited with code 3" in record.getMessage()]
    assert len(starts) == 3
    assert [record.getMessage().rsplit(" ", 2)[-2] for record in exits[:2]] == ["1", "2"]
    assert starts[1] - starts[0] >= 1.0
    assert starts[2] - starts[1] >= 2.0
    assert "[crashy] crashy gives up" in capfd.readouterr().err
