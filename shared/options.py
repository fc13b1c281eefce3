"""The options of a request that every analyzer reads the same way: `timeouts` (tool → seconds) and one mapping
per tool (`options.<tool>`). Checked at the gateway, so a bad value is a 422 and never a tool crash."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from shared.catalog import TOOLS_BY_SERVICE

Seconds = Annotated[float, msgspec.Meta(gt=0, le=86400)]
TOOL_NAMES = frozenset(tool for tools in TOOLS_BY_SERVICE.values() for tool in tools)


def check_options(options: dict[str, Any]) -> None:
    """Raise ValueError naming the option that has the wrong shape."""
    try:
        msgspec.convert(options.get("timeouts", {}), dict[str, Seconds])
    except msgspec.ValidationError as error:
        raise ValueError(f"timeouts: {error} (expected tool name → seconds, 0 < s ≤ 86400)") from error
    for name, value in options.items():
        if name in TOOL_NAMES and not isinstance(value, dict):
            raise ValueError(f"{name}: options of a tool are a JSON object, not {type(value).__name__}")
