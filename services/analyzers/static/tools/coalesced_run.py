"""A coalesced run: one process of a tool over the apps of several tasks that asked for it at about the same time,
its report split back by path into what each task's own run would have printed.

Only for a tool whose findings about a file depend on that file alone and whose report names the file of each
finding and error (semgrep's community engine: every rule looks at one file). Most of such a tool's run on a small
app is its start-up (semgrep's: about 1 CPU-second of the 1.5 an app costs), paid once per coalesced run instead of
once per app.

A run asking for the tool joins the open batch of its priority (or opens one). The batch waits
ASSAY_COALESCE_WINDOW_S for other tasks' runs, then for a slot of the CPU budget at that priority (runs asking
meanwhile still join, up to ASSAY_COALESCE_MAX_APPS apps), and runs the tool once: working directory the apps'
common folder, each app's files named relative to it. Each task then gets the part of the report under its app's
folder, with the paths relative to its app, as its own run in its own folder would have printed them, under its own
command. A batch of one is that task's own run. Each task keeps its own timeout (its tool timeout, never past its
deadline, from the moment the process starts): the process runs for the longest of them, and a task whose own
time ends first gets then what its own run would have had, a timed-out outcome, while the process goes on for the
others (with the shortest for all, one task near its deadline made every task of the batch time out and run its
own process after it). When the combined run does not end in a report the tool can split (a timeout, a crash, an
exit code it never gives on success, unreadable output), every task still waiting runs its own process: a
coalesced run never hands a task an outcome of its own run could not have had.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry import trace

from services.analyzers.base.job import Job
from shared.operations.process import ProcessOutcome, run_process
from shared.wire.tasks import Priority

tracer = trace.get_tracer("assay.analyzer")

# (files relative to the working directory) → the command; (report, the apps' folder prefixes) → each app's report
Command = Callable[[list[str]], list[str]]
Split = Callable[[str, list[str]], dict[str, str]]


@dataclass
class _Member:
    app_dir: Path
    files: list[str]
    command: list[str]  # the task's own command (what its record says and what reproduces its output)
    job: Job
    outcome: asyncio.Future[ProcessOutcome | None]  # its part, its own timeout, or None: run your own process

    def settle(self, outcome: ProcessOutcome | None) -> None:
        """Hand the member its outcome, unless it has one already (its own time ended first)."""
        if not self.outcome.done():
            self.outcome.set_result(outcome)

    def timed_out(self, timeout_s: float, apps: int) -> None:
        """Its own time ended before the process did: what its own run would then have had."""
        self.settle(
            ProcessOutcome(
                argv=self.command,
                exit_code=None,
                stdout="",
                stderr="",
                duration_s=round(timeout_s, 3),
                timed_out=True,
                apps=apps,
            )
        )


@dataclass
class _Batch:
    priority: Priority
    members: list[_Member] = field(default_factory=list)
    closed: bool = False  # holds its CPU slot: nobody joins any more
    waiting: int = 0  # members still waiting for its outcome
    runner: asyncio.Task[None] | None = None

    def admits(self, app_dir: Path, files: list[str]) -> bool:
        """An app is coalesced only when no other member's folder holds it or lies in it (a path names one app); the
        same app asked for again (a batch's `static` and `security` tasks) shares its part, if over the same files."""
        return all(
            member.files == files
            if member.app_dir == app_dir
            else not (member.app_dir.is_relative_to(app_dir) or app_dir.is_relative_to(member.app_dir))
            for member in self.members
        )


class Coalescer:
    """The open batches of one tool in one analyzer process (one per priority), on the loop that made them."""

    def __init__(self, tool: str, ok_exit_codes: frozenset[int], split: Split) -> None:
        self.tool = tool
        self.ok_exit_codes = ok_exit_codes
        self.split = split
        self._open: dict[Priority, _Batch] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(
        self, job: Job, app_dir: Path, files: list[str], command: list[str], combined: Command
    ) -> ProcessOutcome | None:
        """The outcome of `command` (the tool over `files` in `app_dir`), run with other tasks' apps when they ask in
        time; None when the task must run its own process (the combined run could not be split)."""
        loop = asyncio.get_running_loop()
        # batches belong to one loop (tests and benchmarks run several, one after another)
        if self._loop is not loop:
            self._open, self._loop = {}, loop
        settings = job.settings
        batch = self._open.get(job.priority)
        if (
            batch is None
            or batch.closed
            or len(batch.members) >= settings.coalesce_max_apps
            or not batch.admits(app_dir, files)
        ):
            batch = _Batch(job.priority)
            self._open[job.priority] = batch
            batch.runner = asyncio.create_task(
                self._run_batch(batch, combined), name=f"coalesced {self.tool}"
            )
        member = _Member(app_dir, files, command, job, loop.create_future())
        batch.members.append(member)
        batch.waiting += 1
        assert batch.runner is not None
        try:
            return await asyncio.shield(member.outcome)
        except asyncio.CancelledError:
            if not batch.closed:  # not run yet: its app is left out
                batch.members.remove(member)
            raise
        finally:
            batch.waiting -= 1
            if batch.waiting == 0:  # nobody is left to read it (cancelled, or timed out): stop the tool
                batch.runner.cancel()
            if self._open.get(job.priority) is batch and batch.closed:
                del self._open[job.priority]

    async def _run_batch(self, batch: _Batch, combined: Command) -> None:
        try:
            outcomes = await self._gathered(batch, combined)
        except asyncio.CancelledError:
            batch.closed = True
            for member in batch.members:
                member.outcome.cancel()
            raise
        except Exception as error:  # noqa: BLE001 - the members must hear of it, or they would wait for ever
            batch.closed = True
            for member in batch.members:
                if not member.outcome.done():
                    member.outcome.set_exception(error)
            return
        for member in batch.members:
            member.settle(outcomes[member.app_dir])

    async def _gathered(self, batch: _Batch, combined: Command) -> dict[Path, ProcessOutcome | None]:
        first = batch.members[0].job
        await asyncio.sleep(first.settings.coalesce_window_s)
        async with first.cpu_slot(self.tool):
            batch.closed = True  # no await since the slot was granted: nobody joined a batch that has run
            timeouts = [member.job.tool_timeout_s(self.tool) for member in batch.members]
            members = list({member.app_dir: member for member in batch.members}.values())  # one per app
            root, prefixes = _folders(members)
            # the process runs for the longest timeout; a member's own, when shorter, ends its wait
            loop = asyncio.get_running_loop()
            timers = [
                loop.call_later(timeout_s, member.timed_out, timeout_s, len(members))
                for member, timeout_s in zip(batch.members, timeouts, strict=True)
                if timeout_s < max(timeouts)
            ]
            try:
                outcome = await self._process(members, root, prefixes, combined, max(timeouts))
            finally:
                for timer in timers:
                    timer.cancel()
        if len(members) == 1:
            return {members[0].app_dir: outcome}
        if outcome.timed_out or outcome.exit_code not in self.ok_exit_codes:
            return {member.app_dir: None for member in members}
        try:
            # in a thread: decoding and re-encoding a report of many apps would hold the event loop
            parts = await asyncio.to_thread(self.split, outcome.stdout, list(prefixes.values()))
            reports = {app_dir: parts[prefix] for app_dir, prefix in prefixes.items()}
        except ValueError:  # msgspec's decode errors are ValueErrors: the report is not one the tool splits
            return {member.app_dir: None for member in members}
        return {
            member.app_dir: ProcessOutcome(
                argv=member.command,
                exit_code=outcome.exit_code,
                stdout=reports[member.app_dir],
                stderr="",  # the combined run's own words name other tasks' apps
                duration_s=outcome.duration_s,
                apps=len(members),
            )
            for member in members
        }

    async def _process(
        self,
        members: list[_Member],
        root: Path,
        prefixes: dict[Path, str],
        combined: Command,
        timeout_s: float,
    ) -> ProcessOutcome:
        """The tool run once over the members' apps (one app: its own command in its folder)."""
        if len(members) == 1:
            only = members[0]
            return await run_process(only.command, cwd=only.app_dir, timeout_s=timeout_s)
        argv = combined([prefixes[member.app_dir] + path for member in members for path in member.files])
        with tracer.start_as_current_span(
            f"coalesced {self.tool}", attributes={"assay.tool": self.tool, "assay.apps": len(members)}
        ):
            return await run_process(argv, cwd=root, timeout_s=timeout_s)


def _folders(members: list[_Member]) -> tuple[Path, dict[Path, str]]:
    """The apps' common folder (the combined run's working directory), and each app's folder relative to it: how
    the combined run names the app's files."""
    root = Path(os.path.commonpath([member.app_dir for member in members]))
    return root, {member.app_dir: f"{member.app_dir.relative_to(root).as_posix()}/" for member in members}
