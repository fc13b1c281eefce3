"""The CLI's API token: which one it sends, where it is saved, and the one `assay up` makes for the local user.

The CLI sends ASSAY_TOKEN, else the token saved for the gateway ASSAY_GATEWAY_URL names, in
`<XDG_CONFIG_HOME or ~/.config>/assay/tokens/<host>-<port>` (mode 0600). `assay up` on a loopback gateway with
tokens required keeps an admin token `local-<user>` there: if the saved one still works as admin it is kept,
otherwise a new one is created in the database. So the quick start needs no token step; `assay token show-local`
prints it for curl.
"""

from __future__ import annotations

import getpass
import logging
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

from services.cli.client import GatewayClient
from shared.operations.config import Settings
from shared.operations.loopback import is_loopback
from shared.store.atomic_file import write_private
from shared.store.database import create_engine, migrate, sessions
from shared.store.tokens import allows, authenticate, create_token

log = logging.getLogger(__name__)


def token_file(settings: Settings) -> Path:
    """Where the token for `settings.gateway_url` is kept."""
    address = urlparse(settings.gateway_url)
    host = re.sub(r"[^A-Za-z0-9.]", "_", address.hostname or "localhost")
    port = address.port or (443 if address.scheme == "https" else 80)
    return settings.config_dir / "tokens" / f"{host}-{port}"


def read_saved_token(settings: Settings) -> str | None:
    """The saved token for this gateway, or None when there is none."""
    try:
        return token_file(settings).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def save_token(settings: Settings, token: str) -> Path:
    """Write the token for this gateway, readable by the user only (folder 0700, file 0600); returns the file."""
    path = token_file(settings)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, token + "\n")
    return path


def gateway_client(settings: Settings, timeout_s: float = 30.0) -> GatewayClient:
    """A client of the configured gateway that sends the CLI's token (ASSAY_TOKEN, else the saved one)."""
    return GatewayClient(
        settings.gateway_url, settings.token or read_saved_token(settings), timeout_s=timeout_s
    )


def _local_name() -> str:
    user = re.sub(r"[^A-Za-z0-9._@-]", "_", getpass.getuser())[:50]
    return f"local-{user}"


async def ensure_local_token(settings: Settings) -> Path | None:
    """The file holding a working admin token for the local gateway (created if needed); None when the
    gateway is open (ASSAY_AUTH=off) or not on loopback (its tokens are made on purpose there)."""
    host = urlparse(settings.gateway_url).hostname or "127.0.0.1"
    if not settings.auth or not is_loopback(host):
        return None
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        factory = sessions(engine)
        saved = read_saved_token(settings)
        if saved is not None:
            known = await authenticate(factory, saved)
            if known is not None and allows(known.scope, "admin"):
                return save_token(settings, saved)  # rewritten: the file's rights may have been widened
        token, row = await create_token(factory, _local_name(), "admin")
    finally:
        await engine.dispose()
    path = save_token(settings, token)
    log.info("created admin token %s (%s) for the CLI in %s", row.token_id, row.name, path)
    print(  # stderr: with `assay up --json`, stdout is one JSON document
        f"Created an admin API token for the CLI in {path} (`assay token show-local` prints it).",
        file=sys.stderr,
        flush=True,
    )
    return path
