"""Session tokens signed with a key anyone can guess: an HS256/384/512 JWT, a Flask (itsdangerous) session cookie,
an express-session cookie, checked against a short list of the secrets tutorials and templates ship."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

WEAK_KEYS = (
    "secret", "secret-key", "secret_key", "secretkey", "mysecret", "my-secret", "my_secret", "supersecret", "super-secret",
    "super-secret-key", "supersecretkey", "changeme", "change-me", "change_me", "changethis", "dev", "development",
    "dev-secret", "dev-key", "devkey", "default", "key", "password", "123456", "test", "testing", "s3cr3t", "keyboard cat",
    "your-secret-key", "your_secret_key", "your-secret-key-here", "your_secret_key_here", "your-secret", "jwt-secret",
    "jwt_secret", "jwtsecret", "your_jwt_secret", "your-jwt-secret", "flask-secret", "flask-secret-key", "app-secret",
    "app_secret", "secret123", "shhhhh", "shhh", "notsecret", "insecure", "abc123", "qwerty",
)  # fmt: skip


def b64decode(text: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional; None when it is neither."""
    padded = text + "=" * (-len(text) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return decode(padded)
        except (binascii.Error, ValueError):
            continue
    return None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signing_key(value: str) -> tuple[str, str] | None:
    """(scheme, key) when a session token verifies with a weak key: an HS256 JWT, a Flask session, an
    express-session cookie."""
    value = value.strip('"')
    parts = value.split(".")
    if len(parts) == 3 and value.startswith("eyJ"):
        try:
            header = json.loads(b64decode(parts[0]) or b"{}")
        except ValueError:
            header = {}
        algorithm = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(
            header.get("alg")
        )
        if algorithm is not None:
            signed = f"{parts[0]}.{parts[1]}".encode()
            for key in WEAK_KEYS:
                if hmac.compare_digest(_b64url(hmac.new(key.encode(), signed, algorithm).digest()), parts[2]):
                    return "jwt", key
    body = value[1:] if value.startswith(".") else value
    pieces = body.rsplit(".", 2)
    if (
        len(pieces) == 3
    ):  # itsdangerous: payload.timestamp.signature, HMAC-SHA1 with a key derived by HMAC (salt "cookie-session")
        signed = value.rsplit(".", 1)[0].encode()
        for key in WEAK_KEYS:
            derived = hmac.new(key.encode(), b"cookie-session", hashlib.sha1).digest()
            if hmac.compare_digest(_b64url(hmac.new(derived, signed, hashlib.sha1).digest()), pieces[2]):
                return "flask-session", key
    if value.startswith(("s:", "s%3A")):  # express-session: s:<id>.<HMAC-SHA256 base64 without padding>
        unsigned = value.replace("s%3A", "s:", 1)[2:]
        session_id, _, signature = unsigned.rpartition(".")
        for key in WEAK_KEYS:
            expected = (
                base64.b64encode(hmac.new(key.encode(), session_id.encode(), hashlib.sha256).digest())
                .decode()
                .rstrip("=")
            )
            if hmac.compare_digest(expected, signature.replace("%2B", "+").replace("%2F", "/")):
                return "express-session", key
    return None
