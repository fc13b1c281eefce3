"""Whether an advisory database (online vulnerability data) can be reached, decided quickly enough not to stall a run."""

from __future__ import annotations

import asyncio

CHECK_TIMEOUT_S = 3.0


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
