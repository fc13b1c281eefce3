"""Secrets kept out of what Assay writes: the one rule for a URL that may carry a password or a token.

A URL's user information is masked: `user:password@` becomes `user:***@`, a lone `token@` becomes `***@`. It is
applied to log lines (`masked_url` for a URL a service logs, and every JSON log line as a whole), to every event
the orchestrator publishes (so the result files, the database and the events never hold a target's password: the
persister writes them from those events) and to every span written to the span files. The analyzers still receive
the target URLs as requested: the request (on ASSAY_REQUESTS and in the tasks bucket, readable by Assay's own NATS
users only) is the one place a target's password is kept, because the checks need it to reach the target.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from shared.operations.config import url_list

MASK = "***"
# A scheme, `://`, then user information up to the authority's last `@`: none of the characters that end an
# authority (`/`, `?`, `#`), nor a quote or backslash, so a match never leaves the JSON string it is in.
_USERINFO = r"([A-Za-z][A-Za-z0-9+.\-]*://)([^\s/?#\"'\\<>\[\]{}|^`]+)@"
_TEXT = re.compile(_USERINFO)
_BYTES = re.compile(_USERINFO.encode())


def masked_userinfo(userinfo: str) -> str:
    """`user:password` → `user:***`; anything else (a token, a user alone) → `***`."""
    user, colon, _secret = userinfo.partition(":")
    return f"{user}:{MASK}" if user and colon else MASK


def redacted(text: str) -> str:
    """`text` with the user information of every URL in it masked."""
    return _TEXT.sub(lambda match: f"{match[1]}{masked_userinfo(match[2])}@", text)


def redacted_bytes(data: bytes) -> bytes:
    """The same for encoded text (JSON): every URL's user information masked, the rest byte for byte."""
    if b"@" not in data:  # the common case, decided without a scan by the pattern
        return data

    def mask(match: re.Match[bytes]) -> bytes:
        userinfo = masked_userinfo(match[2].decode("utf-8", "surrogateescape"))
        return match[1] + userinfo.encode("utf-8", "surrogateescape") + b"@"

    return _BYTES.sub(mask, data)


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
    userinfo = masked_userinfo(parts.netloc.rsplit("@", 1)[0])
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment))
