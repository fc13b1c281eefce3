"""Where dynamic and performance checks may send requests: the targets policy, one module for gateway and analyzers.

Allowed: loopback (127.0.0.0/8, ::1, `localhost`) on the ports the app's `.env` names (BACKEND_PORT,
FRONTEND_PORT; for an app Assay started, also the marker listener in its sandbox, ASSAY_CANARY_PORT), plus what
ASSAY_TARGET_ALLOW lists: `host` (any port), `host:port`, `[v6]`, `[v6]:port` or an IP
network `10.0.0.0/8`. Nothing else: not another port on loopback, not a name that merely resolves to an allowed
address (names are matched as written, so DNS cannot widen the policy), not a scheme other than http(s).

The gateway refuses such `target_urls` with a 422; the analyzers check every URL again before connecting,
redirect targets included, so the checks only ever touch allowed targets.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import msgspec

from shared.operations.app_env import app_ports, canary_port
from shared.operations.config import Settings
from shared.operations.errors import InputError
from shared.operations.loopback import is_loopback

DEFAULT_PORTS = {"http": 80, "https": 443}
RULE = "ASSAY_TARGET_ALLOW"


class TargetNotAllowed(InputError):
    """A URL outside the targets policy; the message names the rule."""


class TargetPolicy(msgspec.Struct, frozen=True, kw_only=True):
    app_ports: frozenset[int]  # loopback ports the app's .env names
    allow: tuple[str, ...] = ()  # ASSAY_TARGET_ALLOW entries

    def check(self, url: str) -> None:
        """Return when `url` may be requested; TargetNotAllowed naming the rule otherwise."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise TargetNotAllowed(f"{url!r} is not a valid URL: {error}") from error
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        if scheme not in DEFAULT_PORTS or not host:
            raise TargetNotAllowed(f"{url!r}: only http and https URLs with a host are targets")
        port = port or DEFAULT_PORTS[scheme]
        if is_loopback(host) and port in self.app_ports:
            return
        if any(_matches(entry, host, port) for entry in self.allow):
            return
        ports = ", ".join(str(p) for p in sorted(self.app_ports)) or "none"
        listed = ", ".join(self.allow) or "unset"
        raise TargetNotAllowed(
            f"{url!r}: {host} port {port} is outside the targets policy: loopback on the ports the app's .env "
            f"names ({ports}) and {RULE} ({listed})"
        )

    def allows(self, url: str) -> bool:
        try:
            self.check(url)
        except TargetNotAllowed:
            return False
        return True


def target_policy(settings: Settings, app_env: dict[str, str]) -> TargetPolicy:
    """The policy for one app: the ports its .env names, on loopback, and ASSAY_TARGET_ALLOW."""
    ports = set(app_ports(app_env))
    canary = canary_port(app_env)
    if canary is not None:  # the marker listener in the app's sandbox, which the SSRF check reads
        ports.add(canary)
    return TargetPolicy(app_ports=frozenset(ports), allow=settings.target_allow)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _matches(entry: str, host: str, port: int) -> bool:
    """Whether one ASSAY_TARGET_ALLOW entry admits host:port."""
    entry = entry.strip().lower()
    if "/" in entry:
        address = _address(host)
        try:
            return address is not None and address in ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False
    wanted_port: int | None = None
    if entry.startswith("["):  # [v6] or [v6]:port
        closing = entry.find("]")
        name, rest = entry[1:closing], entry[closing + 1 :]
        wanted_port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    elif entry.count(":") == 1:
        name, _, given = entry.partition(":")
        wanted_port = int(given) if given.isdigit() else -1
    else:
        name = entry
    entry_address, host_address = _address(name), _address(host)
    same_host = entry_address == host_address if entry_address and host_address else name == host.strip("[]")
    return same_host and wanted_port in (None, port)
