"""The admin token `assay up` keeps for the local user, so the quick start needs no token step.

On a gateway bound to loopback with tokens required: if the saved token for this gateway still works it is
kept; otherwise a new admin token `local-<user>` is created in the database and saved (mode 0600).
"""

from __future__ import annotations

import getpass
import logging
import re
from pathlib import Path
from urllib.parse import urlparse

from services.cli.credentials import read_saved_token, save_token
from shared.config import Settings
from shared.database import create_engine, migrate, sessions
from shared.loopback import is_loopback
from shared.tokens import allows, authenticate, create_token

log = logging.getLogger(__name__)


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
    print(
        f"Created an admin API token for the CLI in {path} (`assay token show-local` prints it).", flush=True
    )
    return path
