"""ASSAY_PORT_RANGE confines the host ports Assay opens for itself: a real embedded NATS server (and a cluster's
routes) and the forwarders into a real sandboxed app all listen inside the range; a full range says so."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from services.orchestrator.apps.runner import AppRunner, AppSlot
from shared.jetstream.nats_cluster import NatsCluster
from shared.jetstream.natsd import EmbeddedNats
from shared.operations.config import load_settings
from shared.operations.errors import ConfigError
from shared.operations.ports import free_port, reserve_port
from shared.wire.messages import AnalysisRequest
from tests.support.apps import app_request, make_app, needs_bwrap, runner_settings
from tests.support.ports import WORKER_RANGE
from tests.support.ports import free_port as worker_free_port

RANGE = "41300-41399"
LOW, HIGH = 41300, 41399


def test_the_setting_is_parsed_and_a_bad_one_refused_with_the_reason() -> None:
    assert load_settings({"ASSAY_PORT_RANGE": RANGE}).port_range == (LOW, HIGH)
    assert load_settings({}).port_range is None
    for bad in ("41300", "a-b", "500-600", "41399-41300", "41300-70000"):
        with pytest.raises(ConfigError, match=f"ASSAY_PORT_RANGE={bad}: "):
            load_settings({"ASSAY_PORT_RANGE": bad})


def test_a_full_range_is_an_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"no free port left in ASSAY_PORT_RANGE {port}-{port}"):
            free_port(port_range=(port, port))


def test_ports_handed_out_are_not_handed_out_again_before_they_are_listened_on() -> None:
    picked: list[int] = []
    with pytest.raises(
        OSError, match="no free port left"
    ):  # nothing listens on those handed out: yet each is
        for _ in range(21):  # handed out once (a port of the machine's other programs is skipped too)
            picked.append(free_port(port_range=(41400, 41419)))
    assert len(set(picked)) == len(picked) >= 10, picked


def test_a_reserved_port_is_nobody_elses_until_its_socket_is_closed() -> None:
    """The forwarders into a sandbox hold their ports from their choice on: a CI run lost one to another
    process between the choice and the listen."""
    for port_range in (None, (41420, 41439)):
        reserved = reserve_port(port_range=port_range)
        port = reserved.getsockname()[1]
        assert port_range is None or port_range[0] <= port <= port_range[1]
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
        reserved.close()
        with socket.socket() as other:
            other.bind(("127.0.0.1", port))  # free again once closed


def test_the_tests_take_their_ports_below_the_kernels_ephemeral_range_one_range_per_worker() -> None:
    """tests/support/ports.py: no outgoing connection takes a test server's port between its choice and its bind."""
    if WORKER_RANGE is None:
        pytest.skip("this machine leaves too little room below its ephemeral port range")
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    first, last = WORKER_RANGE
    assert first <= worker_free_port() <= last < low
    assert os.environ["ASSAY_PORT_RANGE"] == f"{first}-{last}"  # the services the tests start take it too
    assert load_settings(os.environ).port_range == WORKER_RANGE


async def test_the_embedded_nats_server_and_cluster_routes_listen_in_the_range(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats", port_range=(LOW, HIGH))
    await server.start()
    try:
        assert LOW <= server.port <= HIGH
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
            assert connection.recv(4).startswith(b"INFO")  # it is really the NATS server there
    finally:
        await server.stop()
    cluster = NatsCluster(tmp_path / "cluster", 3, port_range=(LOW, HIGH))
    ports = [node.port for node in cluster.nodes] + [
        node.routes.port for node in cluster.nodes if node.routes
    ]
    assert len(set(ports)) == 6 and all(LOW <= port <= HIGH for port in ports), ports


@needs_bwrap
async def test_the_forwarders_into_a_sandboxed_app_listen_in_the_range(
    tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    server = "import http.server as h\nh.HTTPServer(('127.0.0.1', 5000), h.SimpleHTTPRequestHandler).serve_forever()\n"
    make_app(apps, "ranged", 1, {"backend/app.py": server, "frontend/index.html": "<p>front</p>"})
    runner = AppRunner(runner_settings(tmp_path, apps, app_work_dir, ASSAY_PORT_RANGE=RANGE))
    seen: dict[str, int] = {}

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            for url in request.target_urls:
                seen[url] = (await client.get(url)).status_code
        seen.update(ports)

    slot = AppSlot()
    await runner.run(app_request("task_0000000range", "ranged", 1), slot, analyze)
    assert slot.record is not None and slot.record.error is None
    urls = slot.record.urls
    assert set(urls) == {"backend", "frontend"}
    assert all(seen[url] == 200 for url in urls.values()), seen
    for port in [*(urlparse(url).port for url in urls.values()), seen["ASSAY_CANARY_PORT"]]:
        assert port is not None and LOW <= port <= HIGH, (port, urls)
