"""The static analyzer with a pylint of chosen length: the real analyzer (its tools, CPU budget, heartbeats, cancel
and process groups), where pylint's run is a process that holds for HELD_S and costs no CPU. For tests about what
happens while a tool runs (an analyzer killed, stopped or cancelled mid-run): real pylint over an app made large
enough to be caught running took some 30 CPU-seconds per test, and the length of its run was unknown.

The held process is a command line (never the warm server) and prints an empty pylint report if it is ever let run
to its end; like every tool process it ends with its analyzer (shared/operations/parent_death.py).

Run: `python -m tests.support.held_analyzer --port P`.
"""

from __future__ import annotations

import sys

from services.analyzers.base.analyzer import Analyzer
from services.analyzers.base.main import run_analyzer
from services.analyzers.static.analyzer import build_analyzer
from services.analyzers.static.tools.pylint import Pylint

HELD_S = 120.0
MARK = "held-pylint"  # in the held process's command line, for the tests that look for it in /proc
HOLD = "import sys, time\ntime.sleep(float(sys.argv[1]))\nprint('{\"messages\": []}')\n"


class HeldPylint(Pylint):
    """Answers to `pylint`; its run is the held process, run as a command line."""

    program = sys.executable
    warm = None  # type: ignore[assignment]  # a command line: Pylint names its warm server
    uses_environment = False  # its command line takes no arguments of an app's environment

    def command(self, program: str, files: list[str]) -> list[str]:
        del files
        return [program, "-c", HOLD, str(HELD_S), MARK]


def held_analyzer() -> Analyzer:
    """The static analyzer, its pylint held."""
    static = build_analyzer()
    tools = [HeldPylint() if tool.name == "pylint" else tool for tool in static.tools]
    return Analyzer(service=static.service, tools=tools, needs_source=static.needs_source)


if __name__ == "__main__":
    run_analyzer(held_analyzer())
