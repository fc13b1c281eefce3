"""A warm tool server: a Python tool imported and warmed up once, then forked for each run.

Most of a small app's pylint run is pylint importing itself and astroid building the modules the app imports (flask,
werkzeug, sqlalchemy …), and most of a bandit, detect-secrets, vulture or radon run is its imports and plugin
loading; all the same for every app. This process pays for them once: it imports the tool,
runs it on a warm-up module that imports what generated apps import, freezes what it built (gc.freeze, so the
children's garbage collector leaves the shared pages alone), and then serves runs on a Unix socket. Each connection
is one run in a forked child, which starts from the warm state and nothing else (no run sees another's modules):
it reads `{"argv", "cwd", "memory_mb"}`, answers its pid (the client's handle to kill its process group on a timeout or a
cancel), runs the tool with its stdout and stderr in temporary files, and answers exit code, output and its CPU
seconds. The server exits when its parent (the analyzer) is gone.

    python -m services.analyzers.static.tools.fork_server <tool> <socket> <warm-up folder> <warm-up argv…>
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import resource
import socket
import sys
import tempfile
import traceback
from collections.abc import Callable

from services.analyzers.static.tools.memory_limit import lift, limit
from shared.operations.parent_death import die_with_parent

ACCEPT_POLL_S = 1.0  # how often the server looks whether its parent is still there
FAILED_EXIT = 32  # the exit code of a run the tool could not make (pylint's own "usage error" value)


def run_pylint(argv: list[str]) -> int:
    """One pylint run in this process; its exit code (the bit mask of message kinds it emitted)."""
    from pylint.lint import Run

    return int(Run(argv, exit=False).linter.msg_status)


def console_script(program: str, module: str, function: str) -> Callable[[list[str]], int]:
    """A tool whose command line is `main()` of `module` reading sys.argv (what its console script runs)."""

    def run(argv: list[str]) -> int:
        main = getattr(importlib.import_module(module), function)
        sys.argv = [program, *argv]
        return int(main() or 0)

    return run


RUNNERS: dict[str, Callable[[list[str]], int]] = {
    "pylint": run_pylint,
    "bandit": console_script("bandit", "bandit.cli.main", "main"),
    "detect-secrets": console_script("detect-secrets", "detect_secrets.main", "main"),
    "vulture": console_script("vulture", "vulture.core", "main"),
    "radon": console_script("radon", "radon", "main"),
    "pip-audit": console_script("pip-audit", "pip_audit._cli", "audit"),
}


def _run_quietly(runner: Callable[[list[str]], int], argv: list[str]) -> None:
    """The warm-up run: its output is of no interest."""
    with open(os.devnull, "w") as devnull:
        saved = sys.stdout
        sys.stdout = devnull
        try:
            runner(argv)
        except SystemExit:
            pass
        finally:
            sys.stdout = saved


def _serve_one(connection: socket.socket, runner: Callable[[list[str]], int], server_pid: int) -> None:
    """In the child the server (`server_pid`) forked: one run, answered on `connection`; never returns."""
    code = FAILED_EXIT
    try:
        os.setsid()  # its own process group: the client kills it (and anything it started) as one
        die_with_parent(server_pid)  # the server ends when its analyzer does, and takes its runs with it
        request = json.loads(connection.makefile("rb").readline())
        connection.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
        os.chdir(request["cwd"])
        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        # streams of their own over fds 1 and 2 that a tool may close when done (bandit closes its report's file,
        # stdout) without closing the fds
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - lives as long as the child
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        try:
            limit(int(request.get("memory_mb") or 0))  # the run's own address space, as on the command line
            code = runner(list(request["argv"]))
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else FAILED_EXIT
        except Exception:  # noqa: BLE001 - the tool's own crash: reported like a crashed process, in its stderr
            traceback.print_exc()
        finally:
            lift()  # room to send the answer
        for stream in (sys.stdout, sys.stderr):
            if not stream.closed:
                stream.flush()
        out.seek(0)
        err.seek(0)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        answer = {
            "exit_code": code,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
            "cpu_s": usage.ru_utime + usage.ru_stime,
        }
        connection.sendall(json.dumps(answer).encode() + b"\n")
    finally:
        os._exit(0)


def _reap() -> None:
    """Collect the children that have ended (each answered its client already)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def serve(tool: str, socket_path: str, warm_up_dir: str, warm_up_argv: list[str]) -> None:
    """Warm up, say `ready` on stdout, then fork a child per connection until the parent is gone."""
    runner = RUNNERS[tool]
    parent = os.getppid()
    os.chdir(warm_up_dir)
    _run_quietly(runner, warm_up_argv)
    gc.collect()
    gc.freeze()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(64)
    server.settimeout(ACCEPT_POLL_S)
    print("ready", flush=True)
    server_pid = os.getpid()
    while os.getppid() == parent:
        try:
            connection, _address = server.accept()
        except TimeoutError:
            _reap()
            continue
        if os.fork() == 0:
            server.close()
            connection.settimeout(None)
            _serve_one(connection, runner, server_pid)
        connection.close()
        _reap()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
