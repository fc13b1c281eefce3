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
    disk_mb: int = 0  # the writable disk (the app's copy and /tmp) and the largest file; 0: not bounded (older runs)
    wall_s: float  # the run is stopped after this long, whatever happens


class AppRun(msgspec.Struct, frozen=True, kw_only=True):
    """One run of an app: how it was prepared and started, where it answered, and how it ended."""

    run_id: str
    source_hash: str  # sha256 of the app's files: the preparation is reused for the same hash
    sandbox: SandboxSettings
    command: list[str]  # the exact argv Assay started (sandbox included)
    processes: dict[str, list[str]] = {}  # name (backend, frontend) → argv inside the sandbox
    urls: dict[str, str] = {}  # name → URL the analyzers probed
    prepare_log: str = ""  # tail of the preparation's output (virtualenv, pip, npm)
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    exit_status: int | None = None  # of the sandbox; negative: killed by that signal
    ended: str = ""  # why it ended: stopped by Assay, exited by itself, limit hit...
    output_tail: str = ""  # tail of the app's stdout and stderr
    error: str | None = None  # `app did not start: …` when it never answered
