"""The analyzer's side of a warm tool server (fork_server.py): started on first use, one per tool per analyzer
process, asked over its Unix socket for each run.

A run through the server gives the same output as the tool's command line (it is the same tool, in the same
interpreter, with the same arguments, in the app folder); it only skips the start-up. When the server cannot be
started or a run cannot reach it, the caller runs the command line instead: the warm server is an optimization,
never a dependency.
"""

from __future__ import annotations

import asyncio
import json
import logging
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from shared.operations.process import ProcessOutcome
from shared.operations.process_groups import signal_group

log = logging.getLogger(__name__)

START_TIMEOUT_S = 300.0  # import and warm-up of a cold pylint on a busy machine
ANSWER_LIMIT = 256 * 1024 * 1024  # one run's answer (its JSON output) may be this long

# What a warm server runs its tool on once before any run forks from it: what generated web apps import and do, so
# that pylint's astroid has built those modules and every tool has loaded its plugins (an app's own modules are never
# part of the warm state).
WARM_UP_SOURCE = """\"\"\"What generated web apps import and do, for the tools' warm servers.\"\"\"
import json
import os
import sqlite3
from datetime import datetime, timedelta
from functools import wraps

from flask import Flask, g, jsonify, request, send_from_directory, session
from flask_cors import CORS
from werkzeug.security import check_password_hash, generate_password_hash

app = Flask(__name__)
CORS(app)


def get_db():
    if "db" not in g:
        g.db = sqlite3.connect(os.environ.get("DB", "app.db"))
        g.db.row_factory = sqlite3.Row
    return g.db


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if "user_id" not in session:
            return jsonify({"error": "unauthorized"}), 401
        return view(*args, **kwargs)

    return wrapped


@app.route("/api/items", methods=["GET", "POST"])
@login_required
def items():
    db = get_db()
    if request.method == "POST":
        data = request.get_json() or {}
        db.execute("INSERT INTO items (name, at) VALUES (?, ?)", (data.get("name"), datetime.now().isoformat()))
        db.commit()
    rows = db.execute("SELECT * FROM items").fetchall()
    return jsonify([dict(row) for row in rows]), 200


@app.route("/")
def index():
    token = generate_password_hash("x") + str(timedelta(days=1)) + json.dumps({})
    return send_from_directory(".", "index.html") if check_password_hash(token, "x") else token


if __name__ == "__main__":
    app.run(debug=True)
"""


class WarmTool:
    """A warm server for one tool, shared by every run of this process (whatever event loop asks): started on the
    first `ready`, on `warm_up_source` with `warm_up_argv` (the tool's own arguments, so that the warm state is the
    one its runs need)."""

    def __init__(self, tool: str, warm_up_source: str = WARM_UP_SOURCE) -> None:
        self.tool = tool
        self.warm_up_source = warm_up_source
        self._server: subprocess.Popen[bytes] | None = None
        self._folder: Path | None = None
        self._starting = threading.Lock()
        self._failed = False  # could not start once: not tried again in this process

    async def ready(self, warm_up_argv: list[str]) -> Path | None:
        """The server's socket, starting the server first if needed; None when it cannot run."""
        return await asyncio.to_thread(self._ready, warm_up_argv)

    def _ready(self, warm_up_argv: list[str]) -> Path | None:
        with self._starting:
            if self._server is not None and self._server.poll() is None and self._folder is not None:
                return self._folder / "server.sock"
            if self._failed:
                return None
            try:
                return self._start(warm_up_argv)
            except (OSError, TimeoutError, ValueError) as error:
                log.warning("warm %s server did not start, running its command line: %s", self.tool, error)
                self._failed = True
                return None

    def _start(self, warm_up_argv: list[str]) -> Path:
        folder = Path(tempfile.mkdtemp(prefix=f"assay-warm-{self.tool}-"))
        module = folder / "assay_warm_up.py"
        module.write_text(self.warm_up_source)
        socket_path = folder / "server.sock"
        server = subprocess.Popen(
            [sys.executable, "-m", "services.analyzers.static.tools.fork_server", self.tool, str(socket_path),
             str(folder), *warm_up_argv, module.name],
            cwd=Path(__file__).resolve().parents[4],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        assert server.stdout is not None
        readable, _, _ = select.select([server.stdout], [], [], START_TIMEOUT_S)
        line = server.stdout.readline() if readable else b""
        if line.strip() != b"ready":
            signal_group(server.pid, signal.SIGKILL)
            server.wait()
            raise ValueError(
                f"the server was not ready after {START_TIMEOUT_S:g} s or exited ({server.returncode})"
            )
        self._server, self._folder = server, folder
        return socket_path

    async def run(
        self, socket_path: Path, command: list[str], cwd: Path, timeout_s: float, *, memory_mb: int = 0
    ) -> ProcessOutcome | None:
        """One run of `command` (the tool's command line: its arguments are what the server runs) in `cwd`, its
        address space capped at `memory_mb` (0: not); None when the server cannot be reached."""
        started = time.monotonic()
        try:
            reader, writer = await asyncio.open_unix_connection(str(socket_path), limit=ANSWER_LIMIT)
        except OSError:
            return None
        pid: int | None = None
        try:
            writer.write(
                json.dumps({"argv": command[1:], "cwd": str(cwd), "memory_mb": memory_mb}).encode() + b"\n"
            )
            await writer.drain()
            pid = int(json.loads(await reader.readline())["pid"])
            line = await asyncio.wait_for(
                reader.readline(), max(0.1, timeout_s - (time.monotonic() - started))
            )
            answer = json.loads(line)
        except TimeoutError:
            if pid is not None:
                signal_group(pid, signal.SIGKILL)
            return ProcessOutcome(
                argv=command, exit_code=None, stdout="", stderr="", duration_s=round(time.monotonic() - started, 3),
                timed_out=True,
            )  # fmt: skip
        except asyncio.CancelledError:
            if pid is not None:
                signal_group(pid, signal.SIGKILL)
            raise
        except (OSError, ValueError, KeyError):  # the server went away mid-run
            return None
        finally:
            writer.close()
        return ProcessOutcome(
            argv=command,
            exit_code=int(answer["exit_code"]),
            stdout=str(answer["stdout"]),
            stderr=str(answer["stderr"]),
            duration_s=round(time.monotonic() - started, 3),
            cpu_s=round(float(answer["cpu_s"]), 3),
        )

    def stop(self) -> None:
        """Stop the server; a run it forked, in a group of its own, ends with it (parent_death.py)."""
        with self._starting:
            if self._server is not None and self._server.poll() is None:
                signal_group(self._server.pid, signal.SIGTERM)
                self._server.wait()
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
            self._server, self._folder = None, None
