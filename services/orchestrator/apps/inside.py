"""The first program inside an app's sandbox (stdlib only: it runs with the app's own Python, not Assay's).

It applies the resource limits to itself, so that every process of the app inherits them; listens on a Unix
socket per process, in the folder Assay shares with the sandbox, and forwards each connection to where that
process listens in the sandbox's own network namespace, found by listening.py (the only way in); starts the app's processes; and, when the first of them
ends, stops the others and exits with its status, saying why on stderr.

It also runs the marker listener of the SSRF check on the spec's `canary` port (when given): it answers every
request, keeps the paths it was asked for, and lists them at CANARY_HITS_PATH; an app that fetches a URL it was
given reaches it inside the sandbox, and Assay reads it through the same forwarding as the app's ports.

Usage: `python inside.py '<spec as JSON>'` with keys `limits`, `forwards`, `processes`, `ending` (the file that
gets the one-line note of how the app ended) and optionally `canary`, as services/orchestrator/apps/launch.py
writes it.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
from typing import Any

try:
    from services.orchestrator.apps.listening import Finder
except ImportError:  # run as a script: listening.py is beside it (launch.py binds it there in the sandbox)
    from listening import Finder  # type: ignore[import-not-found,no-redef]

CHUNK = 65536
LIMITS = {
    "cpu_s": resource.RLIMIT_CPU,
    "memory_bytes": resource.RLIMIT_AS,
    "processes": resource.RLIMIT_NPROC,
    "open_files": resource.RLIMIT_NOFILE,
}
CANARY_HITS_PATH = "/assay-canary/hits"
CANARY_MAX_HITS = 1000
SIGNAL_MEANING = {
    signal.SIGXCPU: "CPU time limit",
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "crashed",
}


def apply_limits(limits: dict[str, int]) -> None:
    """Hard and soft limits at once: the app cannot raise them again. CPU time gets SIGXCPU at the limit (the
    reason shows) and SIGKILL a second later, when the hard limit is reached."""
    for name, value in limits.items():
        resource.setrlimit(LIMITS[name], (value, value + 1 if name == "cpu_s" else value))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy `reader` to `writer` until either side closes (both bridges into a sandbox use it)."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _forward(finder: Finder, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One connection from the shared socket to where the app's process listens (found, not imposed)."""
    target = finder.target()
    try:
        if target is None:
            raise ConnectionRefusedError("listening nowhere yet")
        app_reader, app_writer = await asyncio.open_connection(*target)
    except OSError:
        finder.forget()
        writer.close()  # the app is not listening (yet): the caller sees the connection closed
        return
    await asyncio.gather(pipe(reader, app_writer), pipe(app_reader, writer))


async def serve_canary(hits: list[str], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One request to the marker listener: its path kept (at most CANARY_MAX_HITS), or the paths listed as JSON."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
        writer.close()
        return
    parts = head.split(b"\r\n", 1)[0].split(b" ")
    path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
    if path == CANARY_HITS_PATH:
        body = json.dumps(hits).encode()
    else:
        if len(hits) < CANARY_MAX_HITS:
            hits.append(path)
        body = b"assay canary"
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    try:
        await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def _canary(port: int) -> asyncio.Server:
    hits: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_canary(hits, reader, writer)

    return await asyncio.start_server(handle, "127.0.0.1", port)


def describe(status: int) -> str:
    """`status 1`, or `signal 24 (CPU time limit)` for a process killed by a signal."""
    if status >= 0:
        return f"status {status}"
    meaning = SIGNAL_MEANING.get(signal.Signals(-status), "")
    return f"signal {-status}" + (f" ({meaning})" if meaning else "")


async def _first_exit(processes: dict[str, subprocess.Popen[bytes]]) -> tuple[str, int]:
    """The name and status of the first process to end (pidfds: no thread, no polling)."""
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[str] = loop.create_future()
    fds = {name: os.pidfd_open(process.pid) for name, process in processes.items()}

    def on_exit(name: str) -> None:
        if not ended.done():
            ended.set_result(name)

    for name, fd in fds.items():
        loop.add_reader(fd, on_exit, name)
    name = await ended
    for fd in fds.values():
        loop.remove_reader(fd)
        os.close(fd)
    return name, processes[name].wait()


def _note(path: str, text: str) -> None:
    """How the app ended, on stderr and in the note Assay reads (the output's tail may be flooded by then)."""
    print(f"assay-init: {text}", file=sys.stderr, flush=True)
    with open(path, "w") as note:
        note.write(text)


async def _serve(
    forwards: list[dict[str, Any]],
    processes: dict[str, subprocess.Popen[bytes]],
    ending: str,
    canary: int | None = None,
) -> int:
    """Forward the sockets until the first process ends; then stop the others and return that one's status."""
    servers = [await _canary(canary)] if canary else []
    for forward in forwards:
        name = forward["name"]  # an app's process, or the marker listener (this process's own)
        finder = Finder(name, processes[name].pid if name in processes else os.getpid(), int(forward["port"]))

        async def handle(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, finder: Finder = finder
        ) -> None:
            await _forward(finder, reader, writer)

        servers.append(await asyncio.start_unix_server(handle, path=forward["socket"]))
    name, status = await _first_exit(processes)
    _note(ending, f"{name} ended with {describe(status)}")
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    for server in servers:
        server.close()
    return status if status >= 0 else 128 - status


def run(spec: dict[str, Any]) -> int:
    """Limits first (inherited by everything started after), then the app's processes, then the forwarding."""
    apply_limits(spec["limits"])
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for item in spec["processes"]:
        try:
            processes[item["name"]] = subprocess.Popen(item["argv"], cwd=item["cwd"], env=item["env"])
        except OSError as error:
            _note(spec["ending"], f"{item['name']} could not be started: {error}")
            return 127
    return asyncio.run(_serve(spec["forwards"], processes, spec["ending"], spec.get("canary")))


def main() -> None:
    sys.exit(run(json.loads(sys.argv[1])))


if __name__ == "__main__":
    main()
