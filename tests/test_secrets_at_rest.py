"""Secrets at rest (the red team's F8 and F10), against the real stack (each service its own process, a real
nats-server, a real SQLite file): a dynamic analysis of a target whose URL carries a user and password reaches the
target with them, and the password is nowhere Assay keeps what it found (result files, the database, span files,
the events); the database with its WAL and shared-memory files, the span files, the result folders and the var
folder are their user's only (files 0600, folders 0700), or the group's too with ASSAY_UMASK=027."""

from __future__ import annotations

import asyncio
import http.server
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.jetstream.connection import connect
from shared.wire import subjects
from tests.support.ports import free_port
from tests.support.stack import REPO, Stack

MODEL, APP = "openai_codex-mini", 1
PASSWORD = "s3cret-Pa55word"  # noqa: S105 - the secret the test looks for everywhere
TOKEN = "tok-9f8e7d6c5b4a"  # a token given as the only part of a URL's user information


class Target(http.server.BaseHTTPRequestHandler):
    """A page that asks for Basic credentials (and says whether it got them)."""

    authorizations: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        Target.authorizations.append(self.headers.get("Authorization", ""))
        body = b"<html><body>hello</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        return


@pytest.fixture(scope="module")
def target() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Target)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, target: int) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("at-rest")
    (root / "apps" / MODEL / f"app{APP}").mkdir(parents=True)
    stack = Stack(
        root / "stack",
        apps_dir=root / "apps",
        analyzers={"dynamic": 1},
        extra_env={"ASSAY_TARGET_ALLOW": f"127.0.0.1:{target}"},
    )
    stack.start()
    yield stack
    stack.stop()


def files_under(*roots: Path) -> list[Path]:
    return [path for root in roots if root.exists() for path in [root, *root.rglob("*")]]


def test_a_password_in_a_target_url_is_used_and_stored_nowhere(stack: Stack, target: int) -> None:
    urls = [f"http://probe:{PASSWORD}@127.0.0.1:{target}/", f"http://{TOKEN}@127.0.0.1:{target}/page"]
    task_id = stack.submit(model_slug=MODEL, app_number=APP, analysis_type="dynamic", target_urls=urls)
    task = stack.wait_terminal(task_id)
    assert task["status"] in ("completed", "partial"), stack.log_tail()
    events = asyncio.run(stored_events(stack))
    stack.stop()  # every service's last spans and the database's WAL are on disk now
    try:
        assert any(header.startswith("Basic ") for header in Target.authorizations)  # the analyzer used them
        assert events and not any(PASSWORD.encode() in data or TOKEN.encode() in data for data in events)
        assert any(b"probe:***@127.0.0.1" in data for data in events)  # the URL is kept, its password masked
        kept = files_under(stack.results_dir, stack.trace_dir, stack.root / "var")
        kept += [path for path in stack.root.iterdir() if path.name.startswith("assay.db")]
        assert len([path for path in kept if path.is_file()]) > 5
        leaks = [
            str(path.relative_to(stack.root))
            for path in kept
            if path.is_file() and (PASSWORD.encode() in (raw := path.read_bytes()) or TOKEN.encode() in raw)
        ]
        assert leaks == []
    finally:
        stack.start()


async def stored_events(stack: Stack) -> list[bytes]:
    """Every message of ASSAY_EVENTS, read back as the admin."""
    nc = await connect(stack.nats.url, "test-admin", stack.creds("admin"))
    try:
        js = nc.jetstream()
        state = (await js.stream_info(subjects.EVENTS_STREAM)).state
        return [
            (await js.get_msg(subjects.EVENTS_STREAM, seq)).data or b""
            for seq in range(state.first_seq, state.last_seq + 1)
        ]
    finally:
        await nc.close()


def test_files_at_rest_are_their_users_only(stack: Stack) -> None:
    task_id = stack.submit(
        model_slug=MODEL, app_number=APP, analysis_type="dynamic", tools=["security-headers"]
    )
    stack.wait_terminal(task_id)
    database = [path for path in stack.root.iterdir() if path.name.startswith("assay.db")]
    assert {path.name for path in database} >= {"assay.db", "assay.db-wal", "assay.db-shm"}
    kept = [*database, *files_under(stack.results_dir, stack.trace_dir, stack.root / "var")]
    assert any(path.suffix == ".jsonl" for path in kept) and any(
        path.name == "manifest.json" for path in kept
    )

    # What another user could read: a file or folder whose own mode lets others read it, behind folders they may
    # all pass through. The one exception (as root): the apps' work tree (`var/apps`: the app's copy and what its
    # sandbox user needs), with the var folder itself passable, never listable (shared/store/file_modes.py).
    apps = stack.root / "var" / "apps"

    def readable_by_others(path: Path) -> bool:
        folders = [folder for folder in path.parents if stack.root in folder.parents]
        return all(folder.stat().st_mode & 0o001 for folder in folders) and bool(path.stat().st_mode & 0o006)

    open_to_others = {
        str(path.relative_to(stack.root)): oct(path.stat().st_mode & 0o777)
        for path in kept
        if not stat.S_ISLNK(path.lstat().st_mode)
        and path != apps
        and apps not in path.parents
        and (readable_by_others(path) or path.stat().st_mode & 0o002)
    }
    assert open_to_others == {}
    tops = {name: oct((stack.root / name).stat().st_mode & 0o777) for name in ("results", "traces", "var")}
    assert tops["results"] == tops["traces"] == "0o700" and tops["var"] in ("0o700", "0o711"), tops
    private = [path for path in [*database, *files_under(stack.results_dir)] if path.is_file()]
    assert private and {oct(path.stat().st_mode & 0o777) for path in private} == {"0o600"}


def test_assay_umask_027_shares_with_the_group_and_no_further(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ASSAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}",
        "ASSAY_UMASK": "027",
    }
    env["ASSAY_VAR_DIR"] = str(tmp_path / "var")
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "token", "create", "ci", "--direct"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "shared.db").stat().st_mode & 0o777 == 0o640

    refused = subprocess.run(
        [sys.executable, "-m", "services.cli", "token", "list", "--direct"],
        cwd=REPO, env={**env, "ASSAY_UMASK": "022"}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "would let other users read" in refused.stderr
