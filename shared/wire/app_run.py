"""What Assay records about one run of an app it started itself: carried by the task's terminal event (an
optional `app` field) and written by the persister as `services/app.json` in the result folder."""

from __future__ import annotations

from datetime import datetime

import msgspec


class SandboxSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the app was confined: `bwrap` (bubblewrap) or `off` (unsandboxed, opted in), and its limits."""

    mode: str
    network: str  # what the app could reach
    writable: list[str]  # the only paths it could write (inside the sandbox)
    hidden: str  # what it could not see
    cpu_s: int  # RLIMIT_CPU of each process
    memory_mb: int  # RLIMIT_AS of each process
    processes: int  # RLIMIT_NPROC
    open_files: int  # RLIMIT_NOFILE
    # the writable disk (the app's copy and /tmp) and the largest file; 0: not bounded (older runs)
    disk_mb: int = 0
    wall_s: float  # the run is stopped after this long, whatever happens


class AppRun(msgspec.Struct, frozen=True, kw_only=True):
    """One run of an app: how it was prepared and started, where it answered, and how it ended."""

    run_id: str
    source_hash: str  # sha256 of the app's files: the preparation is reused for the same hash
    sandbox: SandboxSettings
    command: list[str]  # the exact argv Assay started (sandbox included)
    processes: dict[str, list[str]] = {}  # name (backend, frontend) → argv inside the sandbox
    # the start rule that chose the backend's command (start_rules.py: procfile, flask-run…)
    start_rule: str = ""
    start_why: str = ""  # what in the app made that rule fit
    urls: dict[str, str] = {}  # name → URL the analyzers probed
    # the app's own servers started beside it (postgresql, mysql, redis) → started where / skipped why, and what
    # showed the need
    dependencies: dict[str, str] = {}
    listening: dict[str, list[str]] = {}  # name → where it was found listening in its sandbox (address:port)
    # the preparation's every command, output and ending (virtualenv, pip, npm), kept whole
    prepare_log: str = ""
    failing_requirement: str | None = None  # what pip or npm could not install, in its own words
    python: str = ""  # the interpreter of the app's virtualenv
    python_why: str = ""  # what the app declared and whether an installed Python fitted it
    # requirement lines whose pins could not install and were relaxed (original → relaxed): the app ran with other
    # versions than it asked for
    relaxed_requirements: dict[str, str] = {}
    started_at: datetime | None = None
    ready_after_s: float | None = None  # from its start to every URL answering
    stopped_at: datetime | None = None
    exit_status: int | None = None  # of the sandbox; negative: killed by that signal
    ended: str = ""  # why it ended: stopped by Assay, exited by itself, limit hit...
    output_tail: str = ""  # tail of the app's stdout and stderr
    error: str | None = None  # `app did not start: …` when it never answered
