"""docker-compose.yml, read as compose reads it (YAML with merge keys, `${VAR:-default}` filled in): three NATS
nodes clustered with JetStream, each on its own volume, routed to each other, none published; every service given
all three URLs; two orchestrators; only the gateway published for clients, on loopback unless ASSAY_PUBLISH_ADDR
says otherwise, and the observability UIs on loopback whatever it says. (No container engine runs here: this is
what can be checked without one.)"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.operations.config import load_settings

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"
SECRETS = {"ASSAY_NATS_PASSWORD": "p", "ASSAY_NATS_ROUTE_PASSWORD": "r", "ASSAY_ANALYZER_TOKEN": "t"}
VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def interpolated(text: str, env: Mapping[str, str]) -> str:
    """`${VAR}`, `${VAR:-default}` and `${VAR:?error}` as compose fills them in."""

    def value(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise KeyError(f"{name}: {rest}")
        return rest if kind == "-" else ""

    return VARIABLE.sub(value, text)


def services(env: Mapping[str, str] = SECRETS) -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load(interpolated(COMPOSE.read_text(), env))["services"]
    return found


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def published(env: Mapping[str, str] = SECRETS) -> dict[str, list[tuple[str, int]]]:
    """Each service that publishes ports: (host address, container port) of each."""
    found = {}
    for name, service in services(env).items():
        if service.get("ports"):
            found[name] = [
                (entry.rsplit(":", 2)[0], int(entry.rsplit(":", 1)[1])) for entry in service["ports"]
            ]
    return found


def test_the_secrets_must_be_given() -> None:
    for name in SECRETS:
        with pytest.raises(KeyError, match=name):
            services({key: value for key, value in SECRETS.items() if key != name})


def test_three_nats_nodes_form_one_jetstream_cluster_each_on_its_own_volume() -> None:
    every = services()
    nodes = {name: service for name, service in every.items() if name.startswith("nats")}
    assert sorted(nodes) == ["nats-1", "nats-2", "nats-3"]
    listeners = {}
    for name, node in nodes.items():
        command = node["command"]
        assert "--jetstream" in command
        assert flag(command, "--server_name") == name
        assert flag(command, "--cluster_name") == "assay"
        [volume] = node["volumes"]
        source, target = volume.split(":")
        assert flag(command, "--store_dir") == target and source == f"{name}-data"
        cluster = re.fullmatch(r"nats://route:r@0\.0\.0\.0:(\d+)", flag(command, "--cluster"))
        assert cluster, flag(command, "--cluster")  # routes must authenticate
        listeners[name] = int(cluster.group(1))
        assert (flag(command, "--user"), flag(command, "--pass")) == ("assay", "p")  # clients must log in
    volumes = yaml.safe_load(interpolated(COMPOSE.read_text(), SECRETS))["volumes"]
    assert {f"{name}-data" for name in nodes} <= set(volumes)
    for name, node in nodes.items():
        routes = set(flag(node["command"], "--routes").split(","))
        others = {f"nats-route://route:r@{other}:{listeners[other]}" for other in nodes if other != name}
        assert routes == others, name


def test_no_nats_node_is_published_and_every_service_knows_all_three() -> None:
    every = services()
    for name in ("nats-1", "nats-2", "nats-3"):
        assert "ports" not in every[name] and "expose" not in every[name], name
    for ports in published().values():
        assert not {4222, 6222, 8222} & {port for _, port in ports}
    users = [name for name, service in every.items() if "ASSAY_NATS_URL" in service.get("environment", {})]
    assert {"gateway", "orchestrator", "persister", "static-1", "static-2"} <= set(users)
    for name in users:
        environment = every[name]["environment"]
        urls = environment["ASSAY_NATS_URL"].split(",")
        assert urls == [f"nats://nats-{i}:4222" for i in (1, 2, 3)], name
        assert environment["ASSAY_NATS_REPLICAS"] == "3"


def test_the_stack_has_two_orchestrators_postgres_jaeger_and_the_analyzers_it_names() -> None:
    every = services()
    assert every["orchestrator"]["deploy"]["replicas"] == 2
    assert {"postgres", "jaeger", "persister", "gateway"} <= set(every)
    environment = every["orchestrator"]["environment"]
    assert environment["ASSAY_DATABASE_URL"].startswith("postgresql+asyncpg://")
    for analyzer in ("STATIC", "DYNAMIC", "PERFORMANCE", "AI"):
        for url in environment[f"ASSAY_{analyzer}_URLS"].split(","):
            host = re.fullmatch(r"ws://([\w-]+):\d+", url)
            assert host and host.group(1) in every, url
    assert len(environment["ASSAY_STATIC_URLS"].split(",")) == 2  # analyzer replicas


def test_analyzers_are_given_longer_than_their_drain_grace_to_stop() -> None:
    grace_s = load_settings({}).analyzer_grace_s
    for name in ("static-1", "static-2", "dynamic", "performance", "ai"):
        period = services()[name]["stop_grace_period"]
        assert period.endswith("s") and float(period[:-1]) > grace_s, (name, period)


def test_only_the_gateway_is_published_for_clients_on_loopback_unless_asked() -> None:
    by_default = published()
    assert by_default["gateway"] == [("127.0.0.1", 8000)]
    # Besides the gateway only the operators' UIs, which have no login of their own.
    assert set(by_default) == {"gateway", "jaeger", "prometheus"}
    assert all(address == "127.0.0.1" for ports in by_default.values() for address, _ in ports)

    widened = published({**SECRETS, "ASSAY_PUBLISH_ADDR": "0.0.0.0"})
    assert widened["gateway"] == [("0.0.0.0", 8000)]
    assert {name: ports for name, ports in widened.items() if name != "gateway"} == {
        name: ports for name, ports in by_default.items() if name != "gateway"
    }
