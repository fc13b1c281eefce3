"""What an analyzer service is: a name, its tools, and whether it needs the app's source folder."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.analyzers.base.tool import Tool
from shared.operations.errors import UnknownTool


@dataclass(frozen=True)
class Analyzer:
    service: str
    tools: list[Tool]
    needs_source: bool = True  # static and ai read the source; dynamic and performance probe the running app
    tool_index: dict[str, Tool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tool_index", {tool.name: tool for tool in self.tools})

    def select(self, names: list[str]) -> list[Tool]:
        """The tools a request names (all when it names none); raises UnknownTool listing unknown names."""
        if not names:
            return list(self.tools)
        unknown = [name for name in names if name not in self.tool_index]
        if unknown:
            raise UnknownTool(
                f"unknown tools for {self.service}: {', '.join(unknown)}; known: {', '.join(self.tool_index)}"
            )
        return [self.tool_index[name] for name in names]
