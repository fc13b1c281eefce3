"""The base of every static tool: run one executable over the app's files, then parse what it printed.

A subclass names its executable, picks the files it analyzes, builds its fixed argument list and parses the
tool's own output into findings. Everything else is the same for all of them and lives here: finding the
executable, probing (and caching) its version, running it in the app folder within the job's budget, and turning
a timeout, a crash or an unreadable output into an honest tool run.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import msgspec

from services.analyzers.base import tool_versions
from services.analyzers.base.job import Job
from services.analyzers.base.reuse import StoredRun
from services.analyzers.base.tool import SkipTool, ToolOutput, executable
from services.analyzers.static.tools import memory_limit
from services.analyzers.static.tools.app_env import ToolEnvironment, resolve
from services.analyzers.static.tools.coalesced_run import Coalescer
from services.analyzers.static.tools.network import remembered_unreachable
from services.analyzers.static.tools.run_inputs import RunInputs, StoredRuns, code_digest, run_inputs
from services.analyzers.static.tools.source import AppSource, source_files
from services.analyzers.static.tools.warm_tool import WarmTool
from shared.operations.config import Settings
from shared.operations.errors import ToolError
from shared.operations.process import ProcessOutcome, run_process
from shared.results.findings import Finding, ToolRun, ToolStatus
from shared.wire.protocol import ToolHealth

# `--version` of a cold semgrep or pylint takes a second or two; a hung one must not stall health.
HEALTH_TIMEOUT_S = 30.0
REASON_CHARS = 600  # how much of a failing tool's own words go into the record's reason
_VERSION = re.compile(r"\d+(?:\.\d+)+")


class UnreadableOutput(ToolError, ValueError):
    """The tool ran but printed something its parser cannot read."""


class AdvisoriesUnavailable(ToolError):
    """The tool ran but the advisory database it asks could not answer: a skip, not a bug."""


def parse_version(text: str) -> str | None:
    """The first dotted version number in a `--version` answer (`bandit 1.9.4 …`, `v9.39.5`, `6.0.1`)."""
    match = _VERSION.search(text)
    return match.group(0) if match else None


def tail(text: str) -> str:
    """The end of a tool's output, where tools put the reason they failed."""
    text = text.strip()
    return text if len(text) <= REASON_CHARS else "…" + text[-REASON_CHARS:]


def app_folder(job: Job) -> Path:
    if job.app_dir is None:
        raise SkipTool("no source folder for this app")
    return job.app_dir


class CliTool:
    """One command-line analysis tool. Subclasses set the class attributes and implement targets/command/parse."""

    name: str = ""
    program: str = ""  # the executable: a bare name (venv first, then PATH) or a path
    ok_exit_codes: frozenset[int] = frozenset({0, 1})  # most linters exit 1 when they found something
    missing_hint: str = ""  # appended to "<program> not installed"
    languages: tuple[str, ...] = (
        "Python",
    )  # which of the app's files it analyzes (source.LANGUAGE_SUFFIXES)
    # Each finding is about one file and depends on that file alone: stored and reused file by file.
    per_file: bool = False
    warm: WarmTool | None = None  # a warm server the tool can run in (Python tools whose start-up dominates)
    # Concurrent runs of several tasks go into one process over all their apps (coalesced_run.py): the tool's
    # findings about a file depend on that file alone, and `split` cuts its report back into each app's.
    coalescing: bool = False
    # Resolves the app's imports (pylint, mypy): reads the app's prepared virtualenv when the orchestrator sent one,
    # and runs within ASSAY_TOOL_MEMORY_MB (memory_limit.py).
    uses_environment: bool = False

    def __init__(self) -> None:
        self._versions: dict[
            str, str | None
        ] = {}  # by executable path: probing is cheap after the first call
        # the probe under way, by executable path: the tasks of a burst that find no version yet wait for one
        # `--version` (56 at once each started their own: a CPU-second apiece for semgrep)
        self._probes: dict[str, asyncio.Future[tuple[ProcessOutcome, str | None]]] = {}
        self._code: str | None = None  # hash of Assay's code that reads this tool's output (a reuse input)
        self.coalescer = Coalescer(self.name, self.ok_exit_codes, self.split) if self.coalescing else None

    # -- what a subclass provides ----------------------------------------------------------------------------

    def targets(self, app_dir: Path) -> list[str]:
        """The files (relative to the app) this tool analyzes; SkipTool when there are none."""
        files = source_files(app_dir, self.languages)
        if not files:
            raise SkipTool(f"no {' or '.join(self.languages)} files")
        return files

    def command(self, program: str, files: list[str]) -> list[str]:
        """The exact argument list, run with the app folder as working directory."""
        raise NotImplementedError

    def environment_arguments(self, environment: ToolEnvironment, settings: Settings) -> list[str]:
        """The arguments that make the tool read the app's site-packages (only for `uses_environment` tools)."""
        del environment, settings
        return []

    def environment(self, job: Job) -> ToolEnvironment | None:
        """The app's environment this tool's run reads (checked: app_env.py), None for a tool that reads none."""
        return resolve(job.settings, job.python_env) if self.uses_environment else None

    def full_command(
        self, program: str, files: list[str], environment: ToolEnvironment | None, settings: Settings
    ) -> list[str]:
        """`command` with the arguments of the app's environment, when the run reads one."""
        command = self.command(program, files)
        if environment is None or environment.site_packages is None:
            return command
        return [command[0], *self.environment_arguments(environment, settings), *command[1:]]

    def advisory_address(self, settings: Settings) -> tuple[str, int] | None:
        """Host and port of the advisory database the tool asks (online vulnerability data); None for offline
        tools."""
        del settings
        return None

    def parse(self, outcome: ProcessOutcome, source: AppSource) -> list[Finding]:
        """Findings from the tool's output; raise UnreadableOutput (or a msgspec error) when it makes no sense."""
        raise NotImplementedError

    def split(self, report: str, prefixes: list[str]) -> dict[str, str]:
        """For a coalescing tool: for each of `prefixes` (an app's folder, relative to the run's working directory,
        ending in '/'), the part of a combined run's `report` about the files under it, its paths relative to that
        folder, as the tool run in that folder prints it; a ValueError when the report cannot be split."""
        raise NotImplementedError

    def gaps(self, outcome: ProcessOutcome) -> str | None:
        """What the tool says it left out of a finished run (rules that timed out, files it could not parse), as
        the reason of a `partial` record; None when it covered everything (the default: the tool says nothing)."""
        del outcome
        return None

    # -- shared behaviour ------------------------------------------------------------------------------------

    def locate(self) -> str | None:
        """Where the executable is, or None when it is not installed."""
        if "/" in self.program:
            return self.program if Path(self.program).is_file() else None
        return executable(self.program)

    def version_argv(self, program: str) -> list[str]:
        return [program, "--version"]

    def not_installed(self) -> str:
        reason = f"{Path(self.program).name} not installed"
        return f"{reason} ({self.missing_hint})" if self.missing_hint else reason

    async def health(self, settings: Settings) -> ToolHealth:
        """Installed or not (checked every time: a file lookup), and its version (asked once per executable, and
        remembered across starts while the executable is the same file: tool_versions.py)."""
        program = self.locate()
        if program is None:
            return ToolHealth(name=self.name, available=False, reason=self.not_installed())
        if program not in self._versions:
            remembered = await asyncio.to_thread(tool_versions.recall, settings.tool_cache_dir, program)
            if remembered is None:
                outcome, version = await self._probe(program, settings.tool_cache_dir)
                if outcome.exit_code != 0:  # not cached: a broken install may be repaired while we run
                    reason = f"{' '.join(outcome.argv)} failed: {tail(outcome.stderr or outcome.stdout)}"
                    return ToolHealth(name=self.name, available=False, reason=reason)
            else:
                version = remembered.version
            self._versions[program] = version
        return ToolHealth(name=self.name, available=True, version=self._versions[program])

    async def _probe(self, program: str, cache_dir: Path) -> tuple[ProcessOutcome, str | None]:
        """`--version` of `program` and the version it names (remembered in `cache_dir`): the probe under way on this
        loop if there is one, else a new one."""
        probe = self._probes.get(program)
        if probe is None or probe.get_loop() is not asyncio.get_running_loop():
            probe = asyncio.ensure_future(self._ask_version(program, cache_dir))
            self._probes[program] = probe
            probe.add_done_callback(
                lambda done: self._probes.pop(program) if self._probes.get(program) is done else None
            )
        return await asyncio.shield(probe)  # a caller cancelled does not cancel the others' probe

    async def _ask_version(self, program: str, cache_dir: Path) -> tuple[ProcessOutcome, str | None]:
        outcome = await run_process(self.version_argv(program), timeout_s=HEALTH_TIMEOUT_S)
        version = parse_version(outcome.stdout + outcome.stderr)
        if outcome.exit_code == 0:
            await asyncio.to_thread(tool_versions.remember, cache_dir, program, version)
        return outcome, version

    async def run(self, job: Job) -> ToolOutput:
        """Run the tool once over its target files in the app folder, or reuse a stored run with the same inputs."""
        app_dir = app_folder(job)
        program, version = await self.ready(job.settings)
        files = await asyncio.to_thread(self.targets, app_dir)
        environment = await asyncio.to_thread(self.environment, job)
        # A tool asking an advisory database reports what the database knows now: its answer is reused within one
        # window of ASSAY_ADVISORY_REUSE_S (the window is one of its inputs), never when that is 0.
        window = job.settings.advisory_reuse_s if self.advisory_address(job.settings) else None
        store = job.reuse_store() if window is None or window > 0 else None
        if store is None:
            return await self.run_fresh(job, program, version, files, environment)
        if self._code is None:
            self._code = await asyncio.to_thread(code_digest, self)
        configuration = self.command(program, [])[1:]
        if environment is not None and environment.identity:  # a changed virtualenv runs the tool again
            configuration.append(f"app environment {environment.identity}")
        if window:
            configuration.append(f"advisories as of window {int(time.time() // window)}")
        inputs = await asyncio.to_thread(
            run_inputs,
            tool=self.name,
            version=version,
            code=self._code,
            configuration=configuration,
            app_dir=app_dir,
            files=files,
        )
        runs = StoredRuns(store, job.task.id, fresh=job.fresh)
        if self.per_file:
            return await self.run_per_file(job, program, version, files, inputs, runs)
        stored = await runs.get(inputs.whole)
        if stored is not None:
            command = self.full_command(program, files, environment, job.settings)
            return self.reused([stored], command, version, len(files))
        output = await self.run_fresh(job, program, version, files, environment)
        await runs.keep(inputs.whole, output, output.findings)
        return output

    async def run_fresh(
        self,
        job: Job,
        program: str,
        version: str | None,
        files: list[str],
        environment: ToolEnvironment | None = None,
    ) -> ToolOutput:
        """Run the tool over `files` (relative to the app folder): in its warm server when it has one, else (or when
        the server cannot be had) as a process of its own."""
        app_dir = app_folder(job)
        await self.check_advisory_host(job.settings)
        command = self.local_command(
            self.full_command(program, files, environment, job.settings), job.settings
        )
        memory_mb = self.memory_mb(job.settings)
        # (a run reading an app's own environment has arguments of its own: it is never coalesced with others)
        outcome = await self.execute(job, command, app_dir, memory_mb, files if environment is None else None)
        if environment is not None and environment.site_packages is not None:
            blocked = await asyncio.to_thread(self.blocked_by_environment, outcome, app_dir, environment)
            if blocked is not None:  # what the environment stopped, run again without it
                environment = environment.left_out(blocked)
                command = self.local_command(
                    self.full_command(program, files, environment, job.settings), job.settings
                )
                outcome = await self.execute(job, command, app_dir, memory_mb)
        return await self.output(
            outcome,
            app_dir,
            version=version,
            files_analyzed=len(files),
            environment=environment,
            memory_mb=memory_mb,
        )

    async def execute(
        self,
        job: Job,
        command: list[str],
        app_dir: Path,
        memory_mb: int,
        coalescable: list[str] | None = None,
    ) -> ProcessOutcome:
        """One run of `command` in the app folder: in the tool's warm server when it has one; else, for a coalescing
        tool given the run's files (`coalescable`), in one process with other tasks' runs; else (or when neither
        can be had) as a process of its own."""
        outcome = (
            await self.run_warm(job, command[0], command, app_dir, memory_mb)
            if job.settings.warm_tools
            else None
        )
        if (
            outcome is None
            and self.coalescer
            and coalescable is not None
            and job.settings.coalesce_window_s > 0
        ):
            program = command[0]
            outcome = await self.coalescer.run(
                job,
                app_dir,
                coalescable,
                command,
                lambda paths: self.local_command(self.command(program, paths), job.settings),
            )
        if outcome is not None:
            return outcome
        return await job.run_process(
            self.name,
            command,
            cwd=app_dir,
            cpu_bound=not self.waits_on_network(job.settings),
            preexec=memory_limit.preexec(memory_mb),
        )

    def blocked_by_environment(
        self, outcome: ProcessOutcome, app_dir: Path, environment: ToolEnvironment
    ) -> str | None:
        """Why a run that read the app's environment checked nothing of the app (an error of the environment's own
        stopped it), as the note of its run again without it; None when it did its work (the default)."""
        del outcome, app_dir, environment
        return None

    def memory_mb(self, settings: Settings) -> int:
        """The address space a run may take (ASSAY_TOOL_MEMORY_MB for the tools that read untrusted modules; 0:
        none)."""
        return settings.tool_memory_mb if self.uses_environment else 0

    def ran_out_of_memory(self, outcome: ProcessOutcome) -> bool:
        """Whether a run limited to its memory shows it hit the limit (a tool that hides a MemoryError in a message
        of its own says so here too)."""
        return memory_limit.ran_out(outcome)

    async def run_warm(
        self, job: Job, program: str, command: list[str], app_dir: Path, memory_mb: int = 0
    ) -> ProcessOutcome | None:
        """`command` run by the tool's warm server (same tool, same arguments, same folder, same memory limit); None
        without one."""
        if self.warm is None:
            return None
        socket_path = await self.warm.ready(self.command(program, [])[1:])
        if socket_path is None:
            return None
        timeout_s = job.tool_timeout_s(self.name)
        if self.waits_on_network(job.settings):
            return await self.warm.run(socket_path, command, app_dir, timeout_s, memory_mb=memory_mb)
        async with job.cpu_slot(self.name):
            return await self.warm.run(socket_path, command, app_dir, timeout_s, memory_mb=memory_mb)

    def waits_on_network(self, settings: Settings) -> bool:
        """An advisory database's client spends its run waiting on the network, not on a core: it runs beside the
        CPU budget, so that its waits never leave a core idle while CPU-bound tools queue."""
        return self.advisory_address(settings) is not None

    def local_command(self, command: list[str], settings: Settings) -> list[str]:
        """`command` as this analyzer runs it: where the tool keeps a cache of its own may be added (this host's
        settings), never anything that changes what it reports (so it is no reuse input)."""
        del settings
        return command

    async def run_per_file(
        self,
        job: Job,
        program: str,
        version: str | None,
        files: list[str],
        inputs: RunInputs,
        runs: StoredRuns,
    ) -> ToolOutput:
        """Reuse the stored findings of every unchanged file; run the tool once over the others, keeping them file
        by file (for tools whose findings about a file depend on that file alone)."""
        stored = {
            path: found for path in files if (found := await runs.get(inputs.per_file[path])) is not None
        }
        changed = [path for path in files if path not in stored]
        if not changed:
            return self.reused(list(stored.values()), self.command(program, files), version, len(files))
        output = await self.run_fresh(job, program, version, changed)
        if output.run.status != "success":
            return output
        by_file: dict[str, list[Finding]] = {path: [] for path in changed}
        for finding in output.findings:
            by_file.setdefault(finding.path or "", []).append(finding)
        # a finding about a file it was not asked about (or about none): nothing is kept file by file
        if set(by_file) == set(changed):
            for path in changed:
                await runs.keep(inputs.per_file[path], output, by_file[path], raw=False)
        if not stored:
            return output
        findings = [
            finding
            for path in files
            for finding in (stored[path].findings if path in stored else by_file.get(path, []))
        ]
        record = msgspec.structs.replace(
            output.run,
            command=self.command(program, files),
            files_analyzed=len(files),
            files_reused=len(stored),
            findings_count=len(findings),
            reused_from=next(iter(stored.values())).task_id,
        )
        return ToolOutput(run=record, findings=findings, raw_output=output.raw_output)

    def reused(
        self, stored: list[StoredRun], command: list[str], version: str | None, files: int
    ) -> ToolOutput:
        """The output of a run whose every input was unchanged: the stored findings, recorded as `reused`."""
        first = stored[0]
        findings = [finding for run in stored for finding in run.findings]
        record = ToolRun(
            tool=self.name,
            status="reused"
            if first.status == "success"
            else "skipped",  # an advisory database's "cannot say"
            reason=first.reason,
            version=version,
            command=command,
            exit_code=first.exit_code,
            files_analyzed=files,
            files_reused=files,
            findings_count=len(findings),
            reused_from=first.task_id,
        )
        return ToolOutput(run=record, findings=findings, raw_output=first.raw_output)

    async def ready(self, settings: Settings) -> tuple[str, str | None]:
        """The executable and its version; SkipTool when it is not (or no longer) installed."""
        health = await self.health(settings)
        program = self.locate()
        if not health.available or program is None:
            raise SkipTool(health.reason or self.not_installed())
        return program, health.version

    async def check_advisory_host(self, settings: Settings) -> None:
        """SkipTool("offline: …") when the tool's advisory database cannot be reached within a few seconds.

        Checked before the tool runs, so an offline machine costs a bounded wait instead of the tool's own
        retries and timeouts; once per ASSAY_ADVISORY_RECHECK_S while it stays unreachable."""
        address = self.advisory_address(settings)
        offline = await remembered_unreachable(*address, settings.advisory_recheck_s) if address else None
        if offline:
            raise SkipTool(offline)

    async def output(
        self,
        outcome: ProcessOutcome,
        app_dir: Path,
        *,
        version: str | None,
        files_analyzed: int,
        environment: ToolEnvironment | None = None,
        memory_mb: int = 0,
    ) -> ToolOutput:
        """The record and findings for one finished (or timed-out) process; the metrics say which environment it
        read (the record's command names its site-packages). A run that hit its memory limit is `failed`."""

        def record(status: ToolStatus, findings: list[Finding], reason: str | None = None) -> ToolOutput:
            run = ToolRun(
                tool=self.name,
                status=status,
                version=version,
                command=outcome.argv,
                exit_code=outcome.exit_code,
                duration_s=outcome.duration_s,
                files_analyzed=files_analyzed,
                findings_count=len(findings),
                reason=reason,
            )
            raw = outcome.stdout if outcome.stdout.strip() else outcome.stderr
            metrics: dict[str, object] = {} if outcome.cpu_s is None else {"cpu_s": outcome.cpu_s}
            if outcome.apps > 1:
                metrics["apps_in_process"] = outcome.apps
            if environment is not None:
                metrics["environment"] = environment.note
            return ToolOutput(run=run, findings=findings, raw_output=raw, metrics=metrics)

        if outcome.timed_out:
            ended = (
                "the process group was killed"
                if outcome.apps == 1
                else f"the process it shared with {outcome.apps - 1} other apps went on for them"
            )
            return record("timeout", [], f"no result within {outcome.duration_s:g} s; {ended}")
        if memory_mb and self.ran_out_of_memory(outcome):
            return record(
                "failed",
                [],
                f"stopped at its memory limit of {memory_mb} MB (ASSAY_TOOL_MEMORY_MB): "
                f"{tail(outcome.stderr or outcome.stdout) or f'exit code {outcome.exit_code}'}",
            )
        if outcome.exit_code not in self.ok_exit_codes:
            return record(
                "failed", [], f"exit code {outcome.exit_code}: {tail(outcome.stderr or outcome.stdout)}"
            )
        try:
            source = AppSource(app_dir, self.name, environment.note if environment else "")
            findings = await asyncio.to_thread(self.parse, outcome, source)
            left_out = await asyncio.to_thread(self.gaps, outcome)
        except AdvisoriesUnavailable as unavailable:
            return record("skipped", [], str(unavailable))
        except (UnreadableOutput, msgspec.DecodeError, msgspec.ValidationError) as error:
            return record("failed", [], f"unreadable output: {error}")
        return record("partial", findings, left_out) if left_out else record("success", findings)
