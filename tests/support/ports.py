"""Ports for the servers the tests start: each xdist worker takes them from a range of its own, below the kernel's
ephemeral range. A port the kernel hands out for binding (port 0) comes from that ephemeral range, where every
outgoing connection of the machine also takes its local port: between a test's choice and its server's bind, one
of the four workers' connections took the port, and a CI run failed on "address already in use" (an analyzer's
port, a sandbox's forwarder). Below the ephemeral range no connection takes a port, and workers never share one.

The range is also every started service's `ASSAY_PORT_RANGE` (set in conftest.py), so the ports Assay opens for
itself (embedded NATS, sandbox forwarders) come from it as well."""

from __future__ import annotations

import os
from pathlib import Path

from shared.operations import ports
from shared.operations.ports import PortRange

EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
FIRST = 12000  # above the machine's services (PostgreSQL, Redis, NATS …)
WORKERS = 10  # xdist workers gw0…gw9 each get a tenth of the room below the ephemeral range
SMALLEST = 300  # a smaller share is no use: the kernel's own ports then


def worker_range() -> PortRange | None:
    """This worker's range, None where the machine leaves too little room below its ephemeral range."""
    try:
        low = int(EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    span = (low - FIRST) // WORKERS
    if span < SMALLEST:
        return None
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0) % WORKERS
    start = FIRST + index * span
    return start, start + span - 1


WORKER_RANGE = worker_range()


def free_port() -> int:
    """A loopback port nothing listens on, from this worker's range (see the module docstring)."""
    return ports.free_port(port_range=WORKER_RANGE)
