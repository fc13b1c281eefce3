"""Secrets kept out of log lines: the one way a URL that may carry a password is shown."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from shared.config import url_list

MASK = "***"


def masked_url(url: str) -> str:
    """`url` (or a comma-separated list of URLs) with any password replaced by `***`; safe to log."""
    return ",".join(_masked_one(part) for part in url_list(url)) if "," in url else _masked_one(url)


def _masked_one(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK  # unparseable: show nothing of it rather than a secret
    if parts.password is None and "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username
    # A lone `user@` in a NATS URL may be a token: mask it too.
    userinfo = f"{user}:{MASK}" if user and parts.password is not None else MASK
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment))
