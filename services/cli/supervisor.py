"""`assay up`: the whole stack on one machine, each service its own process, until Ctrl-C.

Without ASSAY_NATS_URL it starts the embedded nats-server (store under `<var_dir>/nats`, a free loopback port)
with a fresh password per service user, declares the streams, buckets and durables as `admin`, and tells each
service where the server is and its own credentials (services/cli/credentials.py). `--cluster 3` starts three
routed nodes instead (stores under `<var_dir>/nats-cluster/node-<i>`, shared/jetstream/nats_cluster.py), waits until they
have elected JetStream's meta leader, declares everything with 3 replicas and gives every service all three URLs.
Services are started in roster order and stopped in reverse, each with SIGTERM and up to STOP_GRACE_S before
SIGKILL; the embedded nats-server(s) stop last. Every process, nats-servers included, is restarted with backoff when
it dies (services/cli/child.py); a node comes back on its port and store and catches up. Running it again on the
same var folder continues with the same streams, buckets and database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping

import httpx
import msgspec
import nats.errors
from sqlalchemy.exc import SQLAlchemyError

from services.cli.api_token import ensure_local_token
from services.cli.child import Child
from services.cli.credentials import analyzer_token, child_env, save_nats_url
from services.cli.roster import ServiceSpec, roster, runnable
from shared.jetstream.connection import connect
from shared.jetstream.nats_cluster import NatsCluster
from shared.jetstream.nats_users import ADMIN, creds_of, generate_credentials, save_credentials
from shared.jetstream.natsd import EmbeddedNats
from shared.jetstream.streams import declare_all
from shared.operations.config import JetStreamLayout, Settings, cluster_replicas
from shared.operations.redact import masked_url

log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0
READY_WARN_AFTER_S = 60.0


async def wait_until_ready(gateway_url: str, where: dict[str, object], as_json: bool) -> None:
    """Poll the gateway's /readyz until it answers 200, then say where everything listens (on stdout): a line for
    people, or with `as_json` one JSON object (`where`, with the gateway and its API docs)."""
    loop = asyncio.get_running_loop()
    warn_at = loop.time() + READY_WARN_AFTER_S
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                response = await client.get(f"{gateway_url}/readyz")
                if response.status_code == 200:
                    break
                state = response.text
            except httpx.HTTPError as error:
                state = f"{error.__class__.__name__}"
            if loop.time() > warn_at:
                log.warning("gateway still not ready at %s/readyz: %s", gateway_url, state)
                warn_at = loop.time() + READY_WARN_AFTER_S
            await asyncio.sleep(0.25)
    if as_json:
        print(
            json.dumps({"gateway_url": gateway_url, "api_docs": f"{gateway_url}/schema", **where}), flush=True
        )
        return
    print(
        f"Assay is up: {gateway_url} (API docs at {gateway_url}/schema, with a token). Ctrl-C stops it.",
        flush=True,
    )


def metrics_ports(settings: Settings, children: list[Child]) -> dict[str, str]:
    """Give each child but the gateway (which serves /metrics on its own port) a /metrics port of its own, from
    ASSAY_METRICS_PORT_BASE on; where each service's metrics are, by service."""
    where = {"gateway": f"{settings.gateway_url}/metrics"}
    port = settings.metrics_port_base
    for child in children:
        if child.spec.name == "gateway":
            continue
        child.env["ASSAY_METRICS_PORT"] = str(port)
        where[child.spec.name] = f"http://{settings.metrics_host}:{port}/metrics"
        port += 1
    return where


async def _start_nats(
    settings: Settings, credentials: dict[str, str], layout: JetStreamLayout, nodes: int
) -> tuple[str, list[Child]]:
    """Start the embedded server (or a cluster of `nodes`) admitting only Assay's users, each a supervised child
    (restarted on its port and store when it dies), wait for JetStream and declare everything the services use
    with the layout's replicas. The servers' URL, and their children."""
    save_credentials(settings.var_dir, credentials)
    servers: list[EmbeddedNats]
    if nodes > 1:
        cluster = NatsCluster(
            settings.var_dir / "nats-cluster", nodes, credentials=credentials, port_range=settings.port_range
        )
        servers, url = cluster.nodes, cluster.url
    else:
        single = EmbeddedNats(
            settings.var_dir / "nats", credentials=credentials, port_range=settings.port_range
        )
        servers, url = [single], single.url
    # Each in its own session (Child): the terminal's Ctrl-C must not stop NATS before the services have drained
    # into it; `up` stops the servers last.
    children = [
        Child(
            ServiceSpec(f"nats-server-{index}" if nodes > 1 else "nats-server", "nats-server"),
            {},
            server.argv(),
        )
        for index, server in enumerate(servers)
    ]
    try:
        for child in children:
            await child.start()
        for server, child in zip(servers, children, strict=True):
            assert child.process is not None
            await server.listening(child.process)
            extra = {"child": child.spec.name, "pid": child.process.pid}
            log.info("embedded nats-server listening on %s", server.url, extra=extra)
        admin = await connect(url, "assay-setup", creds_of(credentials, ADMIN))
        try:
            await declare_all(admin.jetstream(), settings.ack_wait_s, settings.max_deliver, layout)
        finally:
            await admin.close()
    except BaseException:
        for child in children:
            await child.stop(STOP_GRACE_S)
        raise
    save_nats_url(settings.var_dir, url)
    return url, children


async def up(
    settings: Settings, environ: Mapping[str, str], nats_nodes: int = 1, as_json: bool = False
) -> int:
    """Run the stack until SIGINT/SIGTERM (on an embedded cluster of `nats_nodes` when no ASSAY_NATS_URL is set);
    0 after a clean stop, 1 when it could not start. With `as_json`, stdout is one JSON object once ready."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    env = dict(environ)
    servers: list[Child] = []  # the embedded nats-server(s)
    credentials: dict[str, str] | None = None
    if not settings.nats_url:
        credentials = generate_credentials()
        layout = msgspec.structs.replace(settings.jetstream, replicas=cluster_replicas(nats_nodes))
        try:
            env["ASSAY_NATS_URL"], servers = await _start_nats(settings, credentials, layout, nats_nodes)
        except (RuntimeError, TimeoutError, OSError, nats.errors.Error) as error:
            print(f"assay up: could not start the embedded nats-server: {error}", file=sys.stderr)
            return 1
        # The services look the streams up as they were declared.
        env["ASSAY_NATS_REPLICAS"] = str(layout.replicas)
    elif nats_nodes > 1:
        log.warning("--cluster ignored: ASSAY_NATS_URL names the servers to use")
    token = analyzer_token(settings.var_dir, settings.analyzer_token)
    try:
        await ensure_local_token(settings)
    except (OSError, SQLAlchemyError) as error:
        print(f"assay up: could not prepare the CLI's token ({error}); use ASSAY_TOKEN", file=sys.stderr)
    children = []
    for spec in roster(settings):
        if runnable(spec):
            children.append(Child(spec, child_env(env, spec, credentials, token)))
        else:
            log.warning("skipping %s: %s has no __main__ module", spec.name, spec.module)
    metrics = metrics_ports(settings, children)
    if not as_json:
        print("Metrics: " + ", ".join(f"{name} {url}" for name, url in metrics.items()), flush=True)
    where: dict[str, object] = {
        "nats_url": masked_url(env.get("ASSAY_NATS_URL") or settings.nats_url or ""),
        "metrics": metrics,
    }
    watchers = [asyncio.create_task(server.supervise()) for server in servers]
    readiness = asyncio.create_task(wait_until_ready(settings.gateway_url, where, as_json))
    try:
        for child in children:
            await child.start()
            watchers.append(asyncio.create_task(child.supervise()))
        await stop.wait()
        log.info("stopping: gateway first, persister last")
    finally:
        readiness.cancel()
        for child in [*reversed(children), *servers]:
            await child.stop(STOP_GRACE_S)
        await asyncio.gather(readiness, *watchers, return_exceptions=True)
    return 0


def run_up(settings: Settings, nats_nodes: int = 1, as_json: bool = False) -> int:
    """Entry point of `assay up` (blocks until stopped)."""
    return asyncio.run(up(settings, os.environ, nats_nodes, as_json))
