"""The preparation of an app is confined as tightly as its run: a requirements file naming an index of its own is
refused with the reason, and a source package whose build backend probes the network and forks reaches nothing
(not a listener of the machine's, not through the index proxy) and stops at the process limit. Real bwrap, real
pip, a local package of the app's own (`./pkg`)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from services.orchestrator.apps.errors import AppNotStarted
from services.orchestrator.apps.requirements_policy import check_requirements
from services.orchestrator.apps.runner import AppRunner, AppSlot
from shared.wire.messages import AnalysisRequest
from tests.support.apps import app_request, make_app, needs_bwrap, runner_settings
from tests.support.ports import free_port

pytestmark = needs_bwrap
MODEL = "prep-test"

BACKEND = """
import json, os, socket, sys, time

PLAN = json.load(open(os.path.join(os.path.dirname(__file__), "plan.json")))


def probe():
    seen = {}
    for host in PLAN["hosts"]:
        try:
            socket.create_connection((host, PLAN["port"]), timeout=3).close()
            seen[host] = "connected"
        except OSError as error:
            seen[host] = f"failed: {error}"
    try:
        proxy = socket.create_connection(("127.0.0.1", 3128), timeout=3)
        proxy.sendall(f"CONNECT 127.0.0.1:{PLAN['port']} HTTP/1.1\\r\\n\\r\\n".encode())
        seen["proxy"] = proxy.recv(100).decode(errors="replace").split("\\r\\n")[0]
    except OSError as error:
        seen["proxy"] = f"failed: {error}"
    forks = 0
    refused = ""
    while forks < 10000:
        try:
            if os.fork() == 0:
                time.sleep(5)
                os._exit(0)
        except OSError as error:
            refused = str(error)
            break
        forks += 1
    seen["forks"] = forks
    seen["fork_refused"] = refused
    print("ASSAY-PROBE " + json.dumps(seen), file=sys.stderr, flush=True)
    raise RuntimeError("the build backend stops here")


def get_requires_for_build_wheel(config_settings=None):
    probe()
    return []


build_wheel = build_sdist = get_requires_for_build_sdist = get_requires_for_build_wheel
"""

PYPROJECT = """
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]

[project]
name = "probe"
version = "1.0"
"""


FILLER_BACKEND = """
import os, time


def get_requires_for_build_wheel(config_settings=None):
    chunk = b"x" * (4 * 1024 * 1024)
    for number in range(256):  # 1 GiB in 4 MiB files, each under the largest-file limit
        with open(f"/venv/filler-{number}", "wb") as handle:
            handle.write(chunk)
    time.sleep(30)
    return []


build_wheel = build_sdist = get_requires_for_build_sdist = get_requires_for_build_wheel
"""


class Listener:
    """A TCP listener on the machine's loopback that counts the connections it gets."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Listener:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def _never(request: AnalysisRequest, ports: dict[str, int]) -> None:
    raise AssertionError("the app is never started")


async def _prepare_fails(tmp_path: Path, work: Path, number: int, files: dict[str, str], **env: str) -> str:
    apps = tmp_path / "apps"
    make_app(apps, MODEL, number, {"backend/app.py": "print('never run')\n", **files})
    slot = AppSlot()
    with pytest.raises(AppNotStarted) as failure:
        await AppRunner(runner_settings(tmp_path, apps, work, **env)).run(
            app_request(f"task_0000000f3f0{number}", MODEL, number), slot, _never
        )
    assert slot.record is not None
    # the reason, then the whole preparation log app.json keeps (the reason names only the failed step's ending)
    return f"{failure.value}\n{slot.record.prepare_log}"


async def test_a_requirements_file_naming_its_own_index_is_refused_with_the_reason(
    tmp_path: Path, app_work_dir: Path
) -> None:
    async with Listener() as index:
        requirements = f"--index-url http://127.0.0.1:{index.port}/simple\nflask\n"
        reason = await _prepare_fails(tmp_path, app_work_dir, 1, {"backend/requirements.txt": requirements})
        extra = f"flask\n--extra-index-url=https://127.0.0.1:{index.port}/simple\n"
        reason_extra = await _prepare_fails(tmp_path, app_work_dir, 2, {"backend/requirements.txt": extra})
    assert reason.startswith(
        f"app did not start: backend/requirements.txt line 1: --index-url http://127.0.0.1:{index.port}/simple is "
        "refused: an app installs only from the package indexes Assay is given (ASSAY_APP_INDEX_ALLOW"
    ), reason
    assert reason_extra.startswith("app did not start: backend/requirements.txt line 2: --extra-index-url"), (
        reason
    )
    assert index.connections == 0


async def test_a_build_backend_reaches_nothing_and_stops_at_the_process_limit(
    tmp_path: Path, app_work_dir: Path
) -> None:
    async with Listener() as listener:
        hosts = ["127.0.0.1", "localhost"]
        plan = {"hosts": hosts, "port": listener.port}
        files = {
            "backend/requirements.txt": "./pkg\n",
            "backend/pkg/pyproject.toml": PYPROJECT,
            "backend/pkg/backend.py": BACKEND,
            "backend/pkg/plan.json": json.dumps(plan),
        }
        reason = await _prepare_fails(tmp_path, app_work_dir, 3, files, ASSAY_APP_PROCESSES="40")
    assert reason.startswith("app did not start: installing backend/requirements.txt failed"), reason
    assert listener.connections == 0
    line = next(line for line in reason.splitlines() if "ASSAY-PROBE " in line)
    seen = json.loads(line.split("ASSAY-PROBE ", 1)[1])
    assert all(str(seen[host]).startswith("failed") for host in hosts), seen
    assert seen["proxy"] == "HTTP/1.1 403 Forbidden", seen
    assert seen["forks"] < 40 and "Resource temporarily unavailable" in seen["fork_refused"], seen
    assert f"[the index proxy refused 127.0.0.1:{listener.port} (not a package index" in reason, reason


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed: frontends get no node_modules")
async def test_npm_fetches_nothing_from_where_the_apps_lock_file_or_npmrc_points(
    tmp_path: Path, app_work_dir: Path
) -> None:
    async with Listener() as registry:
        tarball = f"http://127.0.0.1:{registry.port}/is-odd/-/is-odd-3.0.1.tgz"
        package = {
            "name": "frontend",
            "version": "1.0.0",
            "private": True,
            "dependencies": {"is-odd": "3.0.1"},
        }
        lock = {
            "name": "frontend",
            "version": "1.0.0",
            "lockfileVersion": 3,
            "requires": True,
            "packages": {
                "": {"name": "frontend", "version": "1.0.0", "dependencies": {"is-odd": "3.0.1"}},
                "node_modules/is-odd": {"version": "3.0.1", "resolved": tarball},
            },
        }
        files = {
            "backend/app.py": "print('never run')\n",
            "frontend/index.html": "<html></html>",
            "frontend/package.json": json.dumps(package),
            "frontend/package-lock.json": json.dumps(lock),
            "frontend/.npmrc": f"registry=http://127.0.0.1:{registry.port}/\n",
        }
        reason = await _prepare_fails(tmp_path, app_work_dir, 4, files)
    first = reason.splitlines()[0]
    assert first.startswith("app did not start: ") and "npm ci for its frontend failed (npm: exit" in first, (
        reason
    )
    assert registry.connections == 0
    assert (
        "--userconfig=/tmp/.assay-no-npmrc" in reason and "--registry=https://registry.npmjs.org/" in reason
    )


async def test_a_build_backend_filling_the_folder_it_builds_is_stopped_at_the_disk_quota(
    tmp_path: Path, app_work_dir: Path
) -> None:
    files = {
        "backend/requirements.txt": "./pkg\n",
        "backend/pkg/pyproject.toml": PYPROJECT,
        "backend/pkg/backend.py": FILLER_BACKEND,
    }
    reason = await _prepare_fails(tmp_path, app_work_dir, 5, files, ASSAY_APP_DISK_MB="32")
    assert reason.startswith("app did not start: installing backend/requirements.txt failed"), reason
    assert "[pip: stopped, the folder it builds passed its disk quota of 32 MB (ASSAY_APP_DISK_MB)]" in reason
    assert not await asyncio.to_thread(
        lambda: list(app_work_dir.glob("cache/.venv-*"))
    )  # the failed build is gone


@pytest.mark.parametrize(
    "line",
    [
        "--index-url https://evil.example/simple",
        "--index-url=https://evil.example/simple",
        "-i https://evil.example/simple",
        "-ihttps://evil.example/simple",
        "--extra-index-url https://evil.example/simple",
        "--find-links https://evil.example/wheels",
        "-f ./wheels",
        "--find-links=/opt/wheels",
    ],
)
def test_every_spelling_of_an_index_of_the_apps_own_is_refused(line: str) -> None:
    checked = check_requirements(f"flask\n{line}  # pinned\n", frozenset())
    assert len(checked.refused) == 1 and checked.refused[0].startswith("line 2: "), checked


def test_an_index_the_operator_allows_is_honoured_and_local_packages_are_noticed() -> None:
    allowed = check_requirements(
        "-i https://pypi.internal.example/simple\n", frozenset({"pypi.internal.example"})
    )
    assert allowed.refused == [] and not allowed.local
    other_port = check_requirements(
        "-i https://pypi.internal.example:8443/simple\n", frozenset({"pypi.internal.example"})
    )
    assert len(other_port.refused) == 1  # a listed host admits port 443 only, unless the entry names the port
    local = check_requirements("flask==3.0\n-e ./pkg\n", frozenset())
    assert local.refused == [] and local.local
    # a line naming another file of the app's makes the app's files part of what the virtualenv is built from
    for line in (
        "-r extra.txt",
        "-rextra.txt",
        "--requirement=extra.txt",
        "-c pins.txt",
        "--constraint pins.txt",
    ):
        named = check_requirements(f"flask==3.0\n{line}\n", frozenset())
        assert named.refused == [] and named.local, line
    assert not check_requirements("flask==3.0\ncelery[redis]>=5\n", frozenset()).local
