"""Whether an advisory database (online vulnerability data) can be reached, decided quickly enough not to stall a run.

On a machine without the network every audit would wait out the connection timeout again: a host found unreachable
is remembered for ASSAY_ADVISORY_RECHECK_S, and the runs asking meanwhile are skipped at once with the reason (and
when it was found). After that the host is asked again, so a database that came back is used again. A reachable
host is never remembered: the check is a single connection, and the tool's own answer stands for what it knows.
"""

from __future__ import annotations

import asyncio
import time

CHECK_TIMEOUT_S = 3.0

_unreachable: dict[tuple[str, int], tuple[float, str]] = {}  # (host, port) → (monotonic time found, why)


async def unreachable(host: str, port: int = 443, timeout_s: float = CHECK_TIMEOUT_S) -> str | None:
    """None when a TCP connection to host:port opens within `timeout_s`, else why it did not ("offline: …")."""
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except TimeoutError:
        return f"offline: no connection to {host}:{port} within {timeout_s:g} s"
    except OSError as error:
        return f"offline: cannot reach {host}:{port} ({error.strerror or error})"
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return None


async def remembered_unreachable(
    host: str, port: int, recheck_s: float, timeout_s: float = CHECK_TIMEOUT_S
) -> str | None:
    """`unreachable`, with an unreachable verdict kept for `recheck_s` seconds (`0`: asked every time)."""
    known = _unreachable.get((host, port))
    now = time.monotonic()
    if known is not None and now - known[0] < recheck_s:
        return f"{known[1]} (found {now - known[0]:.0f} s ago; asked again {recheck_s:g} s after)"
    offline = await unreachable(host, port, timeout_s)
    if offline is None:
        _unreachable.pop((host, port), None)
    else:
        _unreachable[(host, port)] = (time.monotonic(), offline)
    return offline
