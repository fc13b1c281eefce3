"""The first program inside an app's sandbox (stdlib only: it runs with the app's own Python, not Assay's).

It applies the resource limits to itself, so that every process of the app inherits them; copies the app into its
size-bounded disk (when the spec says where); starts the app's processes; carries each connection Assay hands it
over the control channel (one end of a socket pair per probe, see channel.py) to where the process it names
listens in the sandbox's own network namespace, found by listening.py (the only way in); and, when the first process ends, stops the others and exits
with its status, saying why on stderr and over the channel. The app's processes do not inherit the channel.

It also runs the marker listener of the SSRF check on the spec's `canary` port (when given): it answers every
request, keeps the paths it was asked for, and lists them at CANARY_HITS_PATH; an app that fetches a URL it was
given reaches it inside the sandbox, and Assay reads it through the same forwarding as the app's ports.

Usage: `python inside.py '<spec as JSON>'` with keys `limits`, `control_fd` (the channel's inherited descriptor),
`forwards` (name and port of each process reached through the channel), `processes`, optionally `copy` (`source`,
`app` and `tmp` folders: the read-only copy to copy onto the disk), `disk` (its `path` and size in `mb`),
`canary`, and `relay` (`port` and `socket`: the package index proxy, for a preparation step), as
services/orchestrator/apps/launch.py and prep_sandbox.py write it.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
from typing import Any

try:
    from services.orchestrator.apps.listening import LISTENS_NOTE, Finder, Listener
except ImportError:  # run as a script: listening.py is beside it (sandbox.init_binds binds it there)
    from listening import LISTENS_NOTE, Finder, Listener  # type: ignore[import-not-found,no-redef]

CHUNK = 65536
LIMITS = {
    "cpu_s": resource.RLIMIT_CPU,
    "memory_bytes": resource.RLIMIT_AS,
    "processes": resource.RLIMIT_NPROC,
    "open_files": resource.RLIMIT_NOFILE,
    "file_bytes": resource.RLIMIT_FSIZE,  # no file (the output log on the host included) beyond the disk quota
}
DISK_FULL_BYTES = 1024 * 1024  # less than this left on the sandbox's disk: the ending note says it was full
PR_SET_DUMPABLE = 4  # prctl(2)
NAME_MAX = 64  # bytes of a process name sent with a connection over the channel
CANARY_HITS_PATH = "/assay-canary/hits"
CANARY_MAX_HITS = 1000
SIGNAL_MEANING = {
    signal.SIGXCPU: "CPU time limit",
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "crashed",
    signal.SIGXFSZ: "file size limit",
}


def apply_limits(limits: dict[str, int]) -> None:
    """Hard and soft limits at once: the app cannot raise them again. CPU time gets SIGXCPU at the limit (the
    reason shows) and SIGKILL a second later, when the hard limit is reached."""
    for name, value in limits.items():
        resource.setrlimit(LIMITS[name], (value, value + 1 if name == "cpu_s" else value))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def keep_to_itself() -> None:
    """Not dumpable: the app's processes run as the same user, and could otherwise trace this one or take its
    descriptors (the channel) through /proc or pidfd_getfd. A program it starts is dumpable again (execve)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


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


async def _forward(finder: Finder, connection: socket.socket) -> None:
    """One connection handed over the channel, carried to where the app's process listens (found, not imposed)."""
    reader, writer = await asyncio.open_connection(sock=connection)
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


async def _relay(port: int, path: str) -> asyncio.Server:
    """The package index proxy on 127.0.0.1:`port`, relayed to its Unix socket (bound read-only at `path`)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            proxy_reader, proxy_writer = await asyncio.open_unix_connection(path)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, proxy_writer), pipe(proxy_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", port)


def _receive(control: socket.socket, finders: dict[str, Finder], tasks: set[asyncio.Task[None]]) -> None:
    """Take the connections Assay hands over the channel, each to where the process it names listens."""
    loop = asyncio.get_running_loop()

    def on_readable() -> None:
        try:
            data, fds, _, _ = socket.recv_fds(control, NAME_MAX, 1)
        except BlockingIOError:
            return
        except OSError:
            data, fds = b"", []
        if not data and not fds:  # Assay closed its end
            loop.remove_reader(control)
            return
        connections = [socket.socket(fileno=fd) for fd in fds]
        finder = finders.get(data.decode(errors="replace"))
        if finder is None or len(connections) != 1:
            for connection in connections:
                connection.close()
            return
        task = loop.create_task(_forward(finder, connections[0]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    loop.add_reader(control, on_readable)


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


def _note(control: socket.socket, text: str) -> None:
    """How the app ended, on stderr and over the channel (the output's tail may be flooded by then)."""
    _tell(control, "ended", text, text)


def _tell(control: socket.socket, key: str, value: str, line: str) -> None:
    """A note for Assay over the channel, and its line on stderr for whoever reads the output."""
    try:
        os.write(sys.stderr.fileno(), f"assay-init: {line}\n".encode())
    except OSError:
        pass  # the output is at its size limit: the channel still says it
    try:
        control.send(json.dumps({key: value}).encode())
    except OSError:
        pass  # Assay has gone; stderr still says it


async def _serve(
    control: socket.socket,
    forwards: list[dict[str, Any]],
    processes: dict[str, subprocess.Popen[bytes]],
    canary: int | None = None,
    disk: dict[str, Any] | None = None,
    relay: dict[str, Any] | None = None,
) -> int:
    """Forward the connections Assay hands over until the first process ends; then stop the others and return
    that one's status."""
    servers = [await _canary(canary)] if canary else []
    if relay:
        servers.append(await _relay(int(relay["port"]), relay["socket"]))
    tasks: set[asyncio.Task[None]] = set()
    control.setblocking(False)

    def announce(name: str, listener: Listener) -> None:
        _tell(control, f"{LISTENS_NOTE}{name}", str(listener), f"{name} listens on {listener}")

    finders = {  # an app's process, or the marker listener (this process's own)
        forward["name"]: Finder(
            forward["name"],
            processes[forward["name"]].pid if forward["name"] in processes else os.getpid(),
            int(forward["port"]),
            announce,
        )
        for forward in forwards
    }
    _receive(control, finders, tasks)
    name, status = await _first_exit(processes)
    _note(control, f"{name} ended with {describe(status)}{_disk_full(disk)}")
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    for server in servers:
        server.close()
    return status if status >= 0 else 128 - status


def _disk_full(disk: dict[str, Any] | None) -> str:
    """`; its disk of 512 MB is full (ASSAY_APP_DISK_MB)` when less than DISK_FULL_BYTES of it is left, and
    likewise when the output (a file on the host) reached that size."""
    if not disk:
        return ""
    full = ""
    try:
        left = os.statvfs(disk["path"])
        if left.f_bavail * left.f_frsize < DISK_FULL_BYTES:
            full += f"; its disk of {disk['mb']} MB is full (ASSAY_APP_DISK_MB)"
        if os.fstat(sys.stdout.fileno()).st_size >= disk["mb"] * 1024 * 1024:
            full += f"; its output reached {disk['mb']} MB, the largest file it may write (ASSAY_APP_DISK_MB)"
    except OSError:
        pass
    return full


def _copy_in(copy: dict[str, str]) -> None:
    """The app's read-only copy into its disk (a size-bounded tmpfs), with a temporary folder beside it."""
    shutil.copytree(copy["source"], copy["app"], dirs_exist_ok=True)
    os.makedirs(copy["tmp"], exist_ok=True)


def run(spec: dict[str, Any]) -> int:
    """Limits first (inherited by everything started after), then the app's copy and processes, then the
    forwarding."""
    control = socket.socket(fileno=int(spec["control_fd"]))
    keep_to_itself()
    apply_limits(spec["limits"])
    if "copy" in spec:
        try:
            _copy_in(spec["copy"])
        except OSError as error:
            _note(
                control,
                f"the app's files could not be copied onto its disk: {error}{_disk_full(spec['disk'])}",
            )
            return 1
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for item in spec["processes"]:
        try:
            processes[item["name"]] = subprocess.Popen(item["argv"], cwd=item["cwd"], env=item["env"])
        except OSError as error:
            _note(control, f"{item['name']} could not be started: {error}")
            return 127
    serving = _serve(
        control, spec["forwards"], processes, spec.get("canary"), spec.get("disk"), spec.get("relay")
    )
    return asyncio.run(serving)


def main() -> None:
    sys.exit(run(json.loads(sys.argv[1])))


if __name__ == "__main__":
    main()
