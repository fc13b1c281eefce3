"""From inside the sandbox: a small app of the test's own, started by the app runner under bubblewrap, reports what
it could reach, write and read; a fork bomb and a memory hog are stopped by the limits with the reason."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path

import httpx
import pytest

from services.orchestrator.apps.errors import AppError, AppNotStarted, SandboxUnavailable
from services.orchestrator.apps.runner import AppRunner, AppSlot
from shared.jetstream.natsd import EmbeddedNats
from shared.wire.messages import AnalysisRequest
from tests.support.apps import app_processes, app_request, make_app, needs_bwrap, runner_settings

pytestmark = needs_bwrap
MODEL = "sandbox-test"

PROBE_APP = """
import json, os, socket, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

TARGETS = json.load(open("targets.json"))


def connect(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return "connected"
    except OSError as error:
        return f"failed: {error}"


def write(path):
    try:
        with open(path, "w") as handle:
            handle.write("written from the sandbox")
        return "written"
    except OSError as error:
        return f"failed: {error}"


def read(path):
    try:
        with open(path) as handle:
            return "read: " + handle.read()
    except OSError as error:
        return f"failed: {error}"


def checks():
    return {
        "interfaces": [name for _, name in socket.if_nameindex()],
        "connect": {f"{host}:{port}": connect(host, port) for host, port in TARGETS["connect"]},
        "write": {path: write(path) for path in TARGETS["write"]},
        "read": {path: read(path) for path in TARGETS["read"]},
        "own_copy": write("/app/backend/written.txt"),
        "tmp": write("/tmp/scratch.txt"),
    }


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(checks()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("127.0.0.1", int(os.environ["BACKEND_PORT"])), Handler).serve_forever()
"""


def _request(app_number: int) -> AnalysisRequest:
    return app_request("task_00000000beef", MODEL, app_number)


def _host_address() -> str | None:
    """This machine's own non-loopback address, if it has one (a target on this machine, outside the sandbox)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(
                ("192.0.2.1", 9)
            )  # UDP connect sends nothing: it only picks the route's source address
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else str(address)


async def test_the_app_reaches_nothing_writes_only_its_copy_and_sees_no_results_or_credentials(
    tmp_path: Path, app_work_dir: Path, nats_server: EmbeddedNats
) -> None:
    apps = tmp_path / "apps"
    settings = runner_settings(tmp_path, apps, app_work_dir)
    results = settings.results_dir / MODEL / "app1" / "task_security_000000000001_x"
    results.mkdir(parents=True)
    (results / "result.json").write_text("secret results")
    credentials = settings.var_dir / "credentials"
    credentials.mkdir(parents=True)
    (credentials / "api-token").write_text("secret token")
    source = apps / MODEL / "app1"
    connect = [["127.0.0.1", 5432], ["127.0.0.1", 4222], ["127.0.0.1", nats_server.port]]
    own_address = _host_address()
    if own_address:
        connect.append([own_address, nats_server.port])
    targets = {
        "connect": connect,
        "write": [
            "/usr/assay.txt",
            "/etc/assay.txt",
            "/written.txt",
            str(source / "backend" / "escaped.txt"),
        ],
        "read": [
            str(results / "result.json"),
            str(credentials / "api-token"),
            str(source / "backend" / "app.py"),
        ],
    }
    make_app(apps, MODEL, 1, {"backend/app.py": PROBE_APP, "backend/targets.json": json.dumps(targets)})
    runner = AppRunner(settings)
    slot = AppSlot()
    seen: dict[str, object] = {}

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
            response = await client.get(request.target_urls[0])
        seen.update(response.json())

    await runner.run(_request(1), slot, analyze)

    assert seen["interfaces"] == ["lo"]  # its own network namespace: no route to the machine or beyond
    connects = seen["connect"]
    assert isinstance(connects, dict) and len(connects) == len(connect)
    assert all(outcome.startswith("failed") for outcome in connects.values()), connects
    writes = seen["write"]
    assert isinstance(writes, dict) and all(outcome.startswith("failed") for outcome in writes.values()), (
        writes
    )
    reads = seen["read"]
    assert isinstance(reads, dict) and all(outcome.startswith("failed") for outcome in reads.values()), reads
    assert seen["own_copy"] == "written" and seen["tmp"] == "written"
    escaped = [source / "backend" / "escaped.txt", Path("/usr/assay.txt"), Path("/etc/assay.txt")]
    assert not [path for path in escaped if path.exists()]
    record = slot.record
    assert record is not None and record.error is None and record.ended == "stopped by Assay"
    assert record.command[record.command.index("--unshare-all") - 1].endswith("bwrap")
    assert "--share-net" not in record.command
    assert app_processes(record) == []


async def test_a_fork_bomb_is_stopped_by_the_process_limit_with_the_reason(
    tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    make_app(apps, MODEL, 2, {"backend/app.py": "import os\nwhile True:\n    os.fork()\n"})
    settings = runner_settings(tmp_path, apps, app_work_dir, ASSAY_APP_PROCESSES="32")
    slot = AppSlot()

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        raise AssertionError("a fork bomb never answers")

    with pytest.raises(AppNotStarted) as failure:
        await AppRunner(settings).run(_request(2), slot, analyze)
    reason = str(failure.value)
    assert reason.startswith("app did not start: backend ended with status 1"), reason
    assert "Resource temporarily unavailable" in reason  # fork() refused: RLIMIT_NPROC
    assert slot.record is not None and slot.record.error == reason
    assert slot.record.sandbox.processes == 32
    assert app_processes(slot.record) == []


async def test_a_memory_hog_is_stopped_by_the_memory_limit_with_the_reason(
    tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    make_app(apps, MODEL, 3, {"backend/app.py": "hog = bytearray(2 * 1024 ** 3)\n"})
    settings = runner_settings(tmp_path, apps, app_work_dir, ASSAY_APP_MEMORY_MB="256")
    slot = AppSlot()

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        raise AssertionError("a memory hog never answers")

    with pytest.raises(AppNotStarted) as failure:
        await AppRunner(settings).run(_request(3), slot, analyze)
    assert str(failure.value) == "app did not start: backend ended with status 1 (last output: MemoryError)"
    assert slot.record is not None and app_processes(slot.record) == []


async def test_without_bubblewrap_running_apps_is_refused_with_the_reason(
    tmp_path: Path, app_work_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no bwrap on this PATH
    settings = runner_settings(tmp_path, tmp_path / "apps", app_work_dir)

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        raise AssertionError("never called")

    with pytest.raises(SandboxUnavailable, match="bubblewrap .* ASSAY_APP_SANDBOX=off"):
        await AppRunner(settings).run(_request(1), AppSlot(), analyze)


async def test_with_the_sandbox_off_the_app_runs_unsandboxed_as_the_user_chose(
    tmp_path: Path, app_work_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no bwrap: the opt-in does not need it
    apps = tmp_path / "apps"
    server = (
        "import os, http.server\n"
        "http.server.test(http.server.SimpleHTTPRequestHandler, port=int(os.environ['PORT']), bind='127.0.0.1')\n"
    )
    make_app(apps, MODEL, 4, {"backend/app.py": server})
    settings = runner_settings(tmp_path, apps, app_work_dir, ASSAY_APP_SANDBOX="off")
    slot = AppSlot()
    statuses: list[int] = []

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            statuses.append((await client.get(request.target_urls[0])).status_code)

    await AppRunner(settings).run(_request(4), slot, analyze)
    assert statuses == [200]
    assert slot.record is not None and slot.record.sandbox.mode == "off"
    assert not any(part.endswith("bwrap") for part in slot.record.command)
    assert app_processes(slot.record) == []


async def _failed_start(tmp_path: Path, work_dir: Path, number: int, code: str, **env: str) -> str:
    """Start an app whose backend is `code` under the settings `env`; the reason it did not start."""
    apps = tmp_path / "apps"
    make_app(apps, MODEL, number, {"backend/app.py": code})
    slot = AppSlot()

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        raise AssertionError("the app never answers")

    with pytest.raises(AppNotStarted) as failure:
        await AppRunner(runner_settings(tmp_path, apps, work_dir, **env)).run(_request(number), slot, analyze)
    assert slot.record is not None and app_processes(slot.record) == []
    return str(failure.value)


async def test_a_cpu_burner_is_stopped_by_the_cpu_time_limit(tmp_path: Path, app_work_dir: Path) -> None:
    reason = await _failed_start(tmp_path, app_work_dir, 5, "while True:\n    pass\n", ASSAY_APP_CPU_S="1")
    assert reason.startswith("app did not start: backend ended with signal 24 (CPU time limit)"), reason


async def test_opening_too_many_files_is_stopped_by_the_open_files_limit(
    tmp_path: Path, app_work_dir: Path
) -> None:
    code = "files = [open('/app/backend/app.py') for _ in range(200)]\n"
    reason = await _failed_start(tmp_path, app_work_dir, 6, code, ASSAY_APP_OPEN_FILES="64")
    assert reason.startswith("app did not start: backend ended with status 1"), reason
    assert "Too many open files" in reason


async def test_the_wall_time_ends_a_run_that_goes_on_too_long(tmp_path: Path, app_work_dir: Path) -> None:
    apps = tmp_path / "apps"
    server = "import os, http.server\nhttp.server.test(port=int(os.environ['PORT']), bind='127.0.0.1')\n"
    make_app(apps, MODEL, 7, {"backend/app.py": server})
    slot = AppSlot()

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        await asyncio.sleep(60)

    runner = AppRunner(runner_settings(tmp_path, apps, app_work_dir, ASSAY_APP_WALL_S="1"))
    with pytest.raises(AppError, match=r"app stopped: its wall time of 1 s \(ASSAY_APP_WALL_S\) ran out"):
        await runner.run(_request(7), slot, analyze)
    assert slot.record is not None and slot.record.ended == "stopped by Assay"
    assert app_processes(slot.record) == []


async def test_an_app_that_dies_during_the_analysis_is_recorded_with_the_reason(
    tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    server = (
        "import os, http.server\n"
        "class Once(http.server.SimpleHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        if self.path == '/exit':\n"
        "            os._exit(3)\n"
        "        super().do_GET()\n"
        "http.server.test(Once, port=int(os.environ['PORT']), bind='127.0.0.1')\n"
    )
    make_app(apps, MODEL, 8, {"backend/app.py": server})
    slot = AppSlot()

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            with contextlib.suppress(httpx.HTTPError):
                await client.get(f"{request.target_urls[0]}/exit")
        await asyncio.sleep(1)

    await AppRunner(runner_settings(tmp_path, apps, app_work_dir)).run(_request(8), slot, analyze)
    assert slot.record is not None
    assert slot.record.error == "app stopped during the analysis: backend ended with status 3"
    assert slot.record.exit_status == 3 and app_processes(slot.record) == []


DISK_FILLER = """
import os, sys
written = 0
chunk = b"x" * (1024 * 1024)
try:
    with open(os.path.join(sys.argv[0].rsplit("/", 2)[0], "PLACE", "filler"), "wb") as handle:
        while written < 256 * len(chunk):  # 8 times the quota the test sets
            handle.write(chunk)
            handle.flush()
            written += len(chunk)
finally:
    print(f"wrote {written // len(chunk)} MB", flush=True)
"""


@pytest.mark.parametrize(("number", "place"), [(9, "tmp"), (10, "app")])
async def test_a_disk_filler_is_stopped_at_the_disk_quota_with_the_reason(
    tmp_path: Path, app_work_dir: Path, number: int, place: str
) -> None:
    code = DISK_FILLER.replace(
        'sys.argv[0].rsplit("/", 2)[0], "PLACE"', '"/tmp"' if place == "tmp" else '"/app"'
    )
    reason = await _failed_start(tmp_path, app_work_dir, number, code, ASSAY_APP_DISK_MB="32")
    assert reason.startswith("app did not start: backend ended with status 1; its disk of 32 MB is full"), (
        reason
    )
    assert reason.endswith("(last output: OSError: [Errno 28] No space left on device)"), reason


async def test_output_beyond_the_disk_quota_ends_the_app_and_fills_no_host_disk(
    tmp_path: Path, app_work_dir: Path
) -> None:
    code = "import sys\nline = 'y' * 1023 + '\\n'\nwhile True:\n    sys.stdout.write(line)\n"
    reason = await _failed_start(tmp_path, app_work_dir, 11, code, ASSAY_APP_DISK_MB="16")
    # Python ignores SIGXFSZ, so its write fails (status 1); other programs are killed by it (signal 25)
    assert reason.startswith(
        "app did not start: backend ended with status 1; its output reached 16 MB, the largest file it may write"
    ), reason
