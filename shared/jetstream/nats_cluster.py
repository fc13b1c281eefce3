"""A local NATS JetStream cluster: `size` nats-server processes from the wheel, routed to each other on loopback.

Each node has its own client port, route port and JetStream store (`<root>/node-<i>`), and the same users
(shared/jetstream/nats_users.py). Clients are given every node's URL (`url`, comma-separated) and move to a surviving node
when theirs goes away; streams and buckets declared with `size` replicas (shared/jetstream/streams.py) keep every message
on every node, so one node of three may die without losing anything or stopping the stack.

A node's name (`assay-<i>`) stays the same across restarts: JetStream knows its peers by name, so a node started
again on its store rejoins as itself and catches up. Ports are chosen anew at every start of the cluster.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from pathlib import Path

from shared.jetstream.natsd import EmbeddedNats, Routes
from shared.operations.ports import PortRange, free_port

CLUSTER_NAME = "assay"


def node_name(index: int) -> str:
    return f"{CLUSTER_NAME}-{index}"


class NatsCluster:
    """`size` EmbeddedNats nodes forming one cluster; start and stop them together or one by one."""

    def __init__(
        self,
        root: Path,
        size: int = 3,
        host: str = "127.0.0.1",
        credentials: Mapping[str, str] | None = None,
        port_range: PortRange | None = None,
    ) -> None:
        if size < 1:
            raise ValueError(f"a cluster has at least one node, not {size}")
        password = secrets.token_urlsafe(24)
        route_ports = [free_port(host, port_range) for _ in range(size)]
        self.nodes = [
            EmbeddedNats(
                root / f"node-{index}",
                host=host,
                credentials=credentials,
                port_range=port_range,
                routes=Routes(
                    cluster=CLUSTER_NAME,
                    server_name=node_name(index),
                    port=route_ports[index],
                    peers=tuple(port for other, port in enumerate(route_ports) if other != index),
                    password=password,
                ),
            )
            for index in range(size)
        ]

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated (what ASSAY_NATS_URL takes)."""
        return ",".join(node.url for node in self.nodes)

    async def start(self, timeout_s: float = 15.0) -> None:
        """Start every node and wait until each accepts connections (JetStream elects its leader after that:
        shared/jetstream/streams.wait_for_jetstream)."""
        try:
            await asyncio.gather(*(node.start(timeout_s) for node in self.nodes))
        except BaseException:
            await self.stop()
            raise

    async def stop(self, timeout_s: float = 10.0) -> None:
        await asyncio.gather(*(node.stop(timeout_s) for node in self.nodes))
