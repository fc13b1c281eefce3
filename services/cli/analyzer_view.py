"""`assay analyze --wait`'s progress view: the task's status and one line per analyzer, from its events (SSE).

On a terminal the view is redrawn in place; otherwise each line is printed again only when it changes, so a log
or a CI job reads a plain history.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from services.cli.client import GatewayClient, GatewayError
from shared.wire.messages import TERMINAL_STATUSES

MAX_SILENCE_S = 40.0  # the gateway sends a keep-alive every 15 s: longer silence means the stream is gone


@dataclass
class AnalyzerView:
    """What the events of one task said so far."""

    task_id: str
    status: str = "pending"
    percent: float = 0.0
    analyzers: dict[str, str] = field(default_factory=dict)  # service → what it is doing, or how it ended

    def apply(self, event: dict[str, Any]) -> None:
        """Fold one event (the gateway's JSON of it) into the view."""
        kind = event.get("kind")
        service = event.get("service")
        if kind == "started":
            self.status = "running"
            for name in event.get("services", []):
                self.analyzers.setdefault(name, "waiting")
        elif kind == "progress" and service:
            self.status = "running"
            self.percent = float(event.get("percent", self.percent))
            tool = event.get("tool")
            self.analyzers[service] = f"running  {tool} {event.get('stage', '')}" if tool else "running"
        elif kind == "service" and service:
            self.analyzers[service] = _ended(event)
        elif kind in ("completed", "failed", "cancelled"):
            self.status = str(event.get("status") or kind)
            if self.status in ("completed", "partial"):
                self.percent = 100.0

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def lines(self) -> list[str]:
        width = max((len(name) for name in self.analyzers), default=0)
        header = f"{self.task_id}  {self.status:<9} {self.percent:5.1f}%"
        return [header, *(f"  {name:<{width}}  {state}".rstrip() for name, state in self.analyzers.items())]


def _ended(event: dict[str, Any]) -> str:
    """How one analyzer ended: its status and, when the event carries its result inline, its findings."""
    result = event.get("result")
    counted = f"  {len(result.get('findings', []))} findings" if isinstance(result, dict) else ""
    return f"{event.get('status', 'ended')}{counted}"


class Screen:
    """Draws the view on `out`: in place on a terminal, changed lines only elsewhere."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.live = out.isatty()
        self.shown: list[str] = []

    def draw(self, lines: list[str]) -> None:
        if lines == self.shown:
            return
        if self.live:
            if self.shown:
                self.out.write(f"\033[{len(self.shown)}F\033[J")  # back to the view's first line, clear below
            self.out.write("\n".join(lines) + "\n")
        else:
            self.out.writelines(f"{line}\n" for line in lines if line not in self.shown)
        self.out.flush()
        self.shown = lines


def watch(gateway: GatewayClient, task_id: str, deadline: float, out: TextIO) -> AnalyzerView:
    """Show the task's progress per analyzer until its terminal event, the deadline (time.monotonic), or a broken
    stream (the caller's polling then takes over); the view as it was last drawn."""
    view = AnalyzerView(task_id)
    screen = Screen(out)
    screen.draw(view.lines())
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return view
    try:
        for event in gateway.events(task_id, min(remaining, MAX_SILENCE_S)):
            if event is not None:
                view.apply(event)
                screen.draw(view.lines())
            if view.ended or time.monotonic() > deadline:
                break
    except GatewayError:
        pass  # a gateway restarting or a silent stream: the task is polled instead
    return view
