"""Ports Assay opens on the host for itself (the embedded NATS server and its routes, the forwarders into app
sandboxes): from the kernel's ephemeral range, or from ASSAY_PORT_RANGE when set, so that several stacks share a
machine and a firewall can be told which ports Assay uses."""

from __future__ import annotations

import random
import socket
import time

PortRange = tuple[int, int]  # first and last port, both included
GIVEN_HOLD_S = 30.0  # a port of the range this process handed out is not handed out again for this long
_given: dict[int, float] = {}  # port → when it was handed out (monotonic)


def parse_port_range(text: str) -> PortRange:
    """`40000-40999` as (40000, 40999); ValueError saying what is wrong otherwise."""
    first, sep, last = text.partition("-")
    try:
        low, high = int(first), int(last)
    except ValueError:
        raise ValueError(f"ASSAY_PORT_RANGE={text!r} is not a range like 40000-40999") from None
    if not sep or not 1024 <= low <= high <= 65535:
        raise ValueError(
            f"ASSAY_PORT_RANGE={text!r} must be two ports 1024-65535, the first not above the last"
        )
    return low, high


def _bound(host: str, port: int) -> socket.socket | None:
    sock = socket.socket()
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    return sock


def reserve_port(host: str = "127.0.0.1", port_range: PortRange | None = None) -> socket.socket:
    """A socket bound (not listening) to a port nothing else has: any the kernel gives without a range, else one of
    the range, tried from a random place so that two stacks of one range rarely pick the same, and none this process
    handed out in the last GIVEN_HOLD_S (the kernel's own picks rotate likewise); OSError when the range is full.
    The port stays this process's until the socket is closed: nothing takes it between its choice and its use (an
    outgoing connection's ephemeral port would, on a busy machine)."""
    if port_range is None:
        sock = _bound(host, 0)
        if sock is None:
            raise OSError(f"the kernel gave no free port on {host}")
        return sock
    low, high = port_range
    now = time.monotonic()
    start = random.randint(low, high)  # noqa: S311 (spreading picks, not a secret)
    for offset in range(high - low + 1):
        port = low + (start - low + offset) % (high - low + 1)
        # a port handed out a moment ago may not be listened on yet: free now, but promised
        if now - _given.get(port, -GIVEN_HOLD_S) < GIVEN_HOLD_S:
            continue
        sock = _bound(host, port)
        if sock is not None:
            _given[port] = now
            return sock
    raise OSError(f"no free port left in ASSAY_PORT_RANGE {low}-{high} on {host}")


def free_port(host: str = "127.0.0.1", port_range: PortRange | None = None) -> int:
    """A port nothing listens on now, chosen as `reserve_port` chooses, for a process that binds it itself: unlike
    a reserved port it may be taken before that process binds it."""
    with reserve_port(host, port_range) as sock:
        port: int = sock.getsockname()[1]
        return port
