"""Where an app listens, found rather than imposed: the TCP sockets in LISTEN state that the app's processes hold.

Runs inside the app's sandbox, beside inside.py (stdlib only, the app's own Python): the sandbox has its own pid
and network namespaces, so `/proc` lists only the app's processes and `/proc/net/tcp{,6}` only its sockets. A
socket is the app's when one of its processes (the one Assay started, or any descendant: reloaders, workers, npm's
node) holds its inode among its file descriptors.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column
LISTENS_NOTE = "listens."  # key of inside.py's note over the channel, then the process's name (channel.py)


@dataclass(frozen=True)
class Listener:
    """One listening socket: the address it is bound to and its port."""

    address: str  # 0.0.0.0, 127.0.0.1, ::, ::1 …
    port: int

    def reach(self) -> str:
        """The address to connect to: a wildcard is reached through loopback of its family."""
        return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.address, self.address)

    def __str__(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


def _address(hex_address: str) -> str:
    """/proc/net/tcp's address (32-bit words in host byte order) as text."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, words)
    text = socket.inet_ntop(socket.AF_INET6, words)
    return text.removeprefix("::ffff:") if text.startswith("::ffff:") and "." in text else text


def listeners(proc: str = "/proc") -> dict[int, Listener]:
    """Socket inode → listener, for every listening TCP socket of the network namespace `proc` shows."""
    found: dict[int, Listener] = {}
    for table in ("tcp", "tcp6"):
        try:
            with open(f"{proc}/net/{table}") as rows:
                lines = rows.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN:
                address, _, port = fields[1].partition(":")
                found[int(fields[9])] = Listener(_address(address), int(port, 16))
    return found


def descendants(roots: set[int], proc: str = "/proc") -> set[int]:
    """`roots` and every process descended from them."""
    parents: dict[int, int] = {}
    for entry in os.listdir(proc):
        if entry.isdigit():
            try:
                with open(f"{proc}/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    family = set(roots)
    grown = True
    while grown:
        grown = False
        for pid, parent in parents.items():
            if parent in family and pid not in family:
                family.add(pid)
                grown = True
    return family


def socket_inodes(pids: set[int], proc: str = "/proc") -> set[int]:
    """Inodes of the sockets the processes `pids` hold open."""
    inodes: set[int] = set()
    for pid in pids:
        try:
            names = os.listdir(f"{proc}/{pid}/fd")
        except OSError:
            continue
        for name in names:
            try:
                link = os.readlink(f"{proc}/{pid}/fd/{name}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(int(link[8:-1]))
    return inodes


def listening(root: int, proc: str = "/proc") -> list[Listener]:
    """What the process `root` and its descendants listen on, by port (one entry per port, IPv4 first)."""
    held = socket_inodes(descendants({root}, proc), proc)
    by_port: dict[int, Listener] = {}
    for inode, listener in sorted(listeners(proc).items(), key=lambda item: ":" in item[1].address):
        if inode in held:
            by_port.setdefault(listener.port, listener)
    return [by_port[port] for port in sorted(by_port)]


def choose(found: list[Listener], asked: int) -> Listener | None:
    """The listener to forward to: the port Assay asked for when the app took it, else the app's lowest port."""
    for listener in found:
        if listener.port == asked:
            return listener
    return found[0] if found else None


class Finder:
    """Where one of the app's processes is reached: found on the first connection, kept while it answers, found
    again when it does not (a reloader's restart). Each new address is told to `announce`."""

    def __init__(self, name: str, pid: int, asked: int, announce: Callable[[str, Listener], None]) -> None:
        self.name = name
        self.pid = pid
        self.asked = asked
        self.announce = announce
        self.current: Listener | None = None
        self.said: Listener | None = None

    def target(self) -> tuple[str, int] | None:
        """(host, port) to connect to; None while the process listens nowhere (so every connection that gets
        through went where the record says)."""
        if self.current is None:
            self.current = choose(listening(self.pid), self.asked)
            if self.current is not None and self.current != self.said:
                self.announce(self.name, self.current)
                self.said = self.current
        return (self.current.reach(), self.current.port) if self.current else None

    def forget(self) -> None:
        """The address did not answer: look again on the next connection."""
        self.current = None
