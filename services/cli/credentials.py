"""The CLI's token: ASSAY_TOKEN, else the file saved for this gateway under the user's config folder.

`assay up` saves an admin token for the local gateway in `<XDG_CONFIG_HOME or ~/.config>/assay/tokens/<host>-<port>`
(mode 0600, folder 0700), so the next `assay analyze` needs no setup; `assay token show-local` prints it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse

from services.cli.client import GatewayClient
from shared.config import Settings


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
    """Write the token for this gateway, readable by the user only; returns the file."""
    path = token_file(settings)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an older file may have been created with wider rights
        handle.write(token + "\n")
    return path


def cli_token(settings: Settings) -> str | None:
    """The token the CLI sends: ASSAY_TOKEN first, then the saved file."""
    return settings.token or read_saved_token(settings)


def gateway_client(settings: Settings, timeout_s: float = 30.0) -> GatewayClient:
    """A client of the configured gateway that sends the CLI's token."""
    return GatewayClient(settings.gateway_url, cli_token(settings), timeout_s=timeout_s)
