"""Which service processes `assay up` runs, in start order: the one list the supervisor reads.

The persister starts first and stops last (it drains the events the others publish on their way out); the
gateway starts last and stops first (no new work is accepted while the rest shut down).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from urllib.parse import urlparse

from shared.jetstream.nats_users import GATEWAY, ORCHESTRATOR, PERSISTER
from shared.operations.config import ANALYZERS, Settings
from shared.operations.redact import masked_url

log = logging.getLogger(__name__)

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})


@dataclass(frozen=True)
class ServiceSpec:
    """One process to run: `python -m <module> <args…>`, known in logs as `name`.

    `nats_user`: the embedded server's user it connects as (None: it does not use NATS); `analyzer_token`: it
    speaks to (or is) an analyzer, so it gets the handshake token.
    """

    name: str
    module: str
    args: tuple[str, ...] = ()
    nats_user: str | None = None
    analyzer_token: bool = False


def _analyzer_specs(settings: Settings) -> list[ServiceSpec]:
    """One process per analyzer URL on this machine; a URL elsewhere is someone else's to run."""
    specs = []
    for analyzer in ANALYZERS:
        urls = settings.analyzer_urls[analyzer]
        for index, url in enumerate(urls):
            address = urlparse(url)
            if address.hostname not in LOCAL_HOSTS or address.port is None:
                log.info(
                    "not starting %s analyzer for %s: not a local address with a port",
                    analyzer,
                    masked_url(url),
                )
                continue
            name = analyzer if len(urls) == 1 else f"{analyzer}-{index}"
            args = ("--host", address.hostname, "--port", str(address.port))
            specs.append(ServiceSpec(name, f"services.analyzers.{analyzer}", args, analyzer_token=True))
    return specs


def roster(settings: Settings) -> list[ServiceSpec]:
    """Every service of the local stack, in start order."""
    return [
        ServiceSpec("persister", "services.persister", nats_user=PERSISTER),
        *_analyzer_specs(settings),
        ServiceSpec("orchestrator", "services.orchestrator", nats_user=ORCHESTRATOR, analyzer_token=True),
        ServiceSpec("gateway", "services.gateway", nats_user=GATEWAY),
    ]


def runnable(spec: ServiceSpec) -> bool:
    """Whether `python -m <module>` can start: the package has a `__main__`."""
    try:
        return importlib.util.find_spec(f"{spec.module}.__main__") is not None
    except ModuleNotFoundError:
        return False
