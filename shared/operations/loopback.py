"""Whether an address names this machine only (loopback): what may run without protection."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1; False for any other name or address (0.0.0.0 included)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
