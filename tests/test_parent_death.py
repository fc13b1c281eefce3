"""A tool process ends with the analyzer that started it: killed -9 (or by the OOM killer), the analyzer can stop
no process group, and before this its tools ran on for runs nobody waited for. Both ways a tool is started are
shown on real processes: a command line (run_process) and a warm server's forked run (die_with_parent in a child
the server forks); and the services `assay up` supervises end (by SIGTERM) when the supervisor is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.processes import alive, descendants

REPO = Path(__file__).resolve().parents[1]
COMMAND_LINE = """
import asyncio
from shared.operations.process import run_process
asyncio.run(run_process(["sleep", "300"], timeout_s=600))
"""
FORKED = """
import os, time
from shared.operations.parent_death import die_with_parent
server = os.getpid()
if os.fork() == 0:
    os.setsid()
    die_with_parent(server)
    os.execvp("sleep", ["sleep", "300"])
time.sleep(300)
"""

SUPERVISED = """
import asyncio
from services.cli.child import Child
from services.cli.roster import ServiceSpec

async def main():
    child = Child(ServiceSpec("sleeper", "unused"), {"PATH": "/usr/bin:/bin"}, argv=["sleep", "300"])
    await child.start()
    await asyncio.sleep(300)

asyncio.run(main())
"""


def tool_of(script: str) -> tuple[subprocess.Popen[bytes], int]:
    """The starter process and the pid of the `sleep` it started."""
    starter = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sleeps = [
            pid
            for pid in descendants(starter.pid)
            if Path(f"/proc/{pid}/comm").read_text().strip() == "sleep"
        ]
        if sleeps:
            return starter, sleeps[0]
        time.sleep(0.05)
    starter.kill()
    raise TimeoutError("the tool process never started")


def test_a_command_line_tool_a_forked_run_and_a_supervised_service_end_when_their_starter_is_killed() -> None:
    for script in (COMMAND_LINE, FORKED, SUPERVISED):
        starter, tool = tool_of(script)
        try:
            os.kill(starter.pid, signal.SIGKILL)
            starter.wait()
            deadline = time.monotonic() + 5
            while alive({tool}) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not alive({tool}), f"the tool {tool} outlived its killed starter"
        finally:
            if alive({tool}):
                os.kill(tool, signal.SIGKILL)
