"""The secrets `assay up` makes for one run of the local stack, and which child gets which.

- NATS: a password per user of the embedded server (shared/jetstream/nats_users.py), in `<var>/nats-credentials.json`.
- Analyzers: one bearer token the analyzers require in the WebSocket handshake and the orchestrator sends,
  in `<var>/analyzer-token` (ASSAY_ANALYZER_TOKEN instead, when set).

Both files are mode 0600. A child receives only its own secrets, in its environment (never on its command line):
`ASSAY_NATS_CREDS=<user>:<password>` and `ASSAY_ANALYZER_TOKEN`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path

from services.cli.roster import ServiceSpec
from shared.jetstream.nats_users import creds_of
from shared.store.atomic_file import write_private


def analyzer_token_file(var_dir: Path) -> Path:
    return var_dir / "analyzer-token"


def analyzer_token(var_dir: Path, configured: str | None) -> str:
    """ASSAY_ANALYZER_TOKEN when set, else a fresh token written to `<var>/analyzer-token` (0600)."""
    if configured:
        return configured
    token = secrets.token_urlsafe(32)
    write_private(analyzer_token_file(var_dir), token)
    return token


def child_env(
    base: Mapping[str, str],
    spec: ServiceSpec,
    nats_credentials: Mapping[str, str] | None,
    token: str,
) -> dict[str, str]:
    """The environment of one service: `base` plus the secrets this service needs, minus those it does not.

    `nats_credentials` None: the user's own NATS server, whose ASSAY_NATS_CREDS (in `base`) every NATS client
    uses as given.
    """
    env = dict(base)
    if spec.nats_user is None:
        env.pop("ASSAY_NATS_CREDS", None)
    elif nats_credentials is not None:
        env["ASSAY_NATS_CREDS"] = creds_of(nats_credentials, spec.nats_user)
    if spec.analyzer_token:
        env["ASSAY_ANALYZER_TOKEN"] = token
    else:
        env.pop("ASSAY_ANALYZER_TOKEN", None)
    return env


def nats_url_file(var_dir: Path) -> Path:
    return var_dir / "nats-url"


def save_nats_url(var_dir: Path, url: str) -> None:
    """Where the embedded server of this var folder listens (its port is chosen at each start), for
    `assay subscriber`."""
    write_private(nats_url_file(var_dir), url + "\n")
