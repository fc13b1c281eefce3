"""The red team's attacks on the sandbox's boundary, as apps of the test's own run under bubblewrap by the app
runner: an app that replaces the note of how it ended, or any path it shares with Assay, with a link to a file
only root may read, a FIFO, /dev/zero or a huge file gets none of them read (no secret in the reason or the record,
no hang, no memory growth); an app that swaps a forwarding socket for a link to a root-only Unix listener gets no
probe sent there; the channel into the sandbox is bounded and never inherited by the app."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from services.orchestrator.apps.channel import NOTE_MAX, RECORD_MAX, Channel
from services.orchestrator.apps.errors import AppNotStarted
from services.orchestrator.apps.runner import AppRunner, AppSlot
from shared.wire.messages import AnalysisRequest
from tests.support.apps import app_processes, app_request, make_app, needs_bwrap, runner_settings

MODEL = "boundary-test"
SECRET = "assay-admin-token-7f3e9c1d"
HUGE_BYTES = 600 * 1024 * 1024
RUN_LIMIT_S = 90.0
MEMORY_GROWTH_LIMIT_KB = 150 * 1024

# Plants `plan["plant"]` (a link to a host path, a FIFO) at every name a shared folder could hold, in every
# place the app can write, then exits: where Assay read the ending note from such a folder, it read the plant.
ENDING_APP = """
import json, os, sys

PLAN = json.load(open("plan.json"))
PLACES = ["/assay/shared", "/assay/disk", "/app", "/tmp"]
NAMES = ["ended", "backend.sock", "frontend.sock", "canary.sock"]


def plant(path):
    try:
        os.unlink(path)
    except OSError:
        pass
    try:
        if PLAN["plant"] == "fifo":
            os.mkfifo(path)
            # A reader, so that the init's write does not block; it is gone once the sandbox ends.
            os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        else:
            os.symlink(PLAN["plant"], path)
        print("planted", path)
    except OSError as error:
        print("could not plant", path, error)


for place in PLACES:
    if os.path.isdir(place):
        for name in NAMES:
            plant(os.path.join(place, name))
if PLAN["plant"] == "fifo" and os.fork() == 0:
    import time
    time.sleep(60)  # keeps the FIFO's reader open until the sandbox is stopped
    os._exit(0)
sys.stdout.flush()
sys.exit(1)
"""

# Swaps every socket of a shared folder for a link to the test's root-only listener, then serves HTTP; reports
# the descriptors it inherited.
SOCKET_APP = """
import json, os, threading, time
from http.server import BaseHTTPRequestHandler, HTTPServer

PLAN = json.load(open("plan.json"))
INHERITED = sorted(
    os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{fd}")
)
SWAPPED = []


def parents_descriptors():
    try:
        return sorted(os.listdir(f"/proc/{os.getppid()}/fd"))
    except OSError as error:
        return f"failed: {error}"


PARENT_FDS = parents_descriptors()


def swap():
    deadline = time.time() + 3
    while time.time() < deadline:
        if os.path.isdir("/assay/shared"):
            for name in os.listdir("/assay/shared"):
                if name.endswith(".sock") and name not in SWAPPED:
                    path = os.path.join("/assay/shared", name)
                    os.symlink(PLAN["listener"], path + ".new")
                    os.rename(path + ".new", path)
                    SWAPPED.append(name)
        time.sleep(0.01)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(
            {"app": "the app itself", "inherited": INHERITED, "swapped": SWAPPED, "parent_fds": PARENT_FDS}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


swap()
HTTPServer(("127.0.0.1", int(os.environ["BACKEND_PORT"])), Handler).serve_forever()
"""


@pytest.fixture
def root_only() -> Iterator[Path]:
    """A folder only root may enter, outside pytest's own, for the files and sockets the app must not reach."""
    folder = Path(tempfile.mkdtemp(prefix="assay-root-only-"))
    folder.chmod(0o700)
    yield folder
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


def _secret_file(folder: Path) -> Path:
    secret = folder / "tokens"
    secret.write_text(f"{SECRET}\n")
    secret.chmod(0o600)
    return secret


def _huge_file(folder: Path) -> Path:
    huge = folder / "huge"
    with huge.open("wb") as handle:
        handle.truncate(HUGE_BYTES)  # sparse: costs no disk, reads as HUGE_BYTES of zeros
    huge.chmod(0o600)
    return huge


def _peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def _never(request: AnalysisRequest, ports: dict[str, int]) -> None:
    raise AssertionError("the app exits before it answers")


@needs_bwrap
@pytest.mark.parametrize("plant", ["secret", "fifo", "dev-zero", "huge"])
async def test_a_planted_ending_note_is_never_read_by_the_orchestrator(
    tmp_path: Path, app_work_dir: Path, root_only: Path, plant: str
) -> None:
    targets = {"fifo": "fifo", "dev-zero": "/dev/zero"}
    if plant == "secret":
        targets[plant] = str(_secret_file(root_only))
    if plant == "huge":
        targets[plant] = str(_huge_file(root_only))
    target = targets[plant]
    apps = tmp_path / "apps"
    number = ["secret", "fifo", "dev-zero", "huge"].index(plant) + 1
    make_app(
        apps,
        MODEL,
        number,
        {"backend/app.py": ENDING_APP, "backend/plan.json": json.dumps({"plant": target})},
    )
    slot = AppSlot()
    before = _peak_kb()
    async with asyncio.timeout(RUN_LIMIT_S):  # a FIFO read would block here for ever
        with pytest.raises(AppNotStarted) as failure:
            await AppRunner(runner_settings(tmp_path, apps, app_work_dir)).run(
                app_request("task_0000000b0d00", MODEL, number), slot, _never
            )
    grown = _peak_kb() - before
    reason = str(failure.value)
    assert reason.startswith("app did not start: backend ended with status 1"), reason
    record = slot.record
    assert record is not None
    stored = msgspec.json.encode(record).decode()
    assert SECRET not in reason and SECRET not in stored
    assert record.ended == "backend ended with status 1", record.ended
    assert len(stored) < 64_000  # nothing of /dev/zero or the huge file came along
    assert grown < MEMORY_GROWTH_LIMIT_KB, f"the orchestrator grew by {grown} kB"
    assert app_processes(record) == []


class RootListener:
    """A Unix listener in a root-only folder that answers like a web server and keeps what it was sent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.received: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RootListener:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await reader.read(65536)
            self.received.append(data)
            body = b'{"app": "the root listener"}'
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            writer.close()

        self.server = await asyncio.start_unix_server(handle, path=str(self.path))
        self.path.chmod(0o600)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


@needs_bwrap
async def test_a_socket_swapped_for_a_link_to_a_root_only_listener_gets_no_probe(
    tmp_path: Path, app_work_dir: Path, root_only: Path
) -> None:
    apps = tmp_path / "apps"
    async with RootListener(root_only / "admin.sock") as listener:
        plan = {"listener": str(listener.path)}
        make_app(apps, MODEL, 5, {"backend/app.py": SOCKET_APP, "backend/plan.json": json.dumps(plan)})
        slot = AppSlot()
        answers: list[dict[str, object]] = []

        async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
            async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
                for _ in range(5):
                    answers.append((await client.get(request.target_urls[0])).json())

        async with asyncio.timeout(RUN_LIMIT_S):
            await AppRunner(runner_settings(tmp_path, apps, app_work_dir)).run(
                app_request("task_0000000b0d05", MODEL, 5), slot, analyze
            )
    assert listener.received == []
    assert [answer["app"] for answer in answers] == ["the app itself"] * 5
    inherited = answers[0]["inherited"]
    assert isinstance(inherited, list)
    assert not [link for link in inherited if str(link).startswith("socket:")], inherited  # not the channel
    # Nor can it take the channel from inside.py, its parent: that one keeps its descriptors to itself.
    assert str(answers[0]["parent_fds"]).startswith("failed: [Errno 13] Permission denied"), answers[0]
    assert slot.record is not None and app_processes(slot.record) == []


async def test_a_note_from_inside_is_cut_and_any_descriptor_it_sends_is_closed_unread(tmp_path: Path) -> None:
    channel = Channel()
    sandbox = channel.inside.dup()  # what the sandbox holds
    channel.handed_over()
    offered = tmp_path / "offered-by-the-sandbox"
    with offered.open("wb") as handle:
        socket.send_fds(sandbox, [b'{"other": "x"}'], [handle.fileno()])
    sandbox.send(json.dumps({"ended": "x" * (10 * RECORD_MAX)}).encode())  # cut by the kernel: no longer JSON
    sandbox.send(json.dumps({"ended": "y" * (RECORD_MAX // 2)}).encode())
    sandbox.close()
    await channel.drained()
    assert channel.notes == {"ended": "y" * NOTE_MAX}
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            held.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    assert str(offered) not in held  # the descriptor the sandbox sent was never taken in
    channel.close()
