"""Every setting Assay reads, with its default, in one place.

Each field is read from the environment variable named in its comment. Relative paths are resolved from the
folder `assay` was started in (services inherit it from the supervisor). The README's configuration table lists
the same variables; keep the two in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

ANALYZERS = ("static", "dynamic", "performance", "ai")
DEFAULT_ANALYZER_PORTS = {"static": 8101, "dynamic": 8102, "performance": 8103, "ai": 8104}

DAY_S = 24 * 3600.0
MIB = 1024 * 1024
GIB = 1024 * MIB
DUPLICATE_WINDOW_S = 120.0  # JetStream's publish de-duplication window; a stream's max age may not be shorter


class Retention(msgspec.Struct, frozen=True):
    """How long a stream or bucket keeps a message, and how much it may hold in all (JetStream's max_age and
    max_bytes). A full stream refuses new messages (discard policy `new`) rather than drop old ones a consumer may
    not have read yet; age removes them."""

    max_age_s: float  # 0: no age limit
    max_bytes: int  # -1: no size limit


class JetStreamLayout(msgspec.Struct, frozen=True, kw_only=True):
    """Replicas and limits of Assay's streams and buckets, applied when they are declared (shared/streams.py)."""

    # ASSAY_NATS_REPLICAS: copies of every stream and bucket; default 3 when ASSAY_NATS_URL lists three or more
    # servers (a cluster), else 1
    replicas: int = 1
    requests: Retention = Retention(7 * DAY_S, GIB)  # ASSAY_REQUESTS_MAX_AGE_S, ASSAY_REQUESTS_MAX_BYTES
    events: Retention = Retention(7 * DAY_S, 10 * GIB)  # ASSAY_EVENTS_MAX_AGE_S, ASSAY_EVENTS_MAX_BYTES
    dead_letters: Retention = Retention(30 * DAY_S, GIB)  # ASSAY_DLQ_MAX_AGE_S, ASSAY_DLQ_MAX_BYTES
    # ASSAY_TASKS_BUCKET_MAX_AGE_S (the entries' TTL), ASSAY_TASKS_BUCKET_MAX_BYTES
    tasks_bucket: Retention = Retention(DAY_S, 256 * MIB)
    # ASSAY_ARTIFACTS_MAX_AGE_S, ASSAY_ARTIFACTS_MAX_BYTES: results too large for a message
    artifacts: Retention = Retention(7 * DAY_S, 10 * GIB)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    nats_url: str | None  # ASSAY_NATS_URL: comma-separated servers; unset → `assay up` embeds nats-server
    jetstream: JetStreamLayout  # ASSAY_NATS_REPLICAS, ASSAY_<STREAM>_MAX_AGE_S and _MAX_BYTES
    database_url: str  # ASSAY_DATABASE_URL
    results_dir: Path  # ASSAY_RESULTS_DIR
    apps_dir: Path  # ASSAY_APPS_DIR
    var_dir: Path  # ASSAY_VAR_DIR: embedded NATS store, SQLite file, local span files
    gateway_url: str  # ASSAY_GATEWAY_URL
    analyzer_urls: dict[str, list[str]]  # ASSAY_<ANALYZER>_URLS, e.g. ASSAY_STATIC_URLS
    log_level: str  # ASSAY_LOG_LEVEL
    trace_dir: Path  # ASSAY_TRACE_DIR: span files when no OTLP endpoint is set
    ack_wait_s: float  # ASSAY_ACK_WAIT_S: JetStream ack wait; runs send in_progress() well before it
    max_deliver: int  # ASSAY_MAX_DELIVER: deliveries before a message goes to the DLQ
    task_deadline_s: float  # ASSAY_TASK_DEADLINE_S: default deadline of one analysis
    tasks_per_orchestrator: int  # ASSAY_ORCHESTRATOR_CONCURRENCY: tasks one orchestrator replica runs at once
    heartbeat_timeout_s: float  # ASSAY_HEARTBEAT_TIMEOUT_S: analyzer silence that fails a run
    # ASSAY_ANALYZER_OUTAGE_S: while no replica of an analyzer is healthy, tasks that need it wait this long from
    # the start of the outage before they fail with the reason
    analyzer_outage_s: float = 300.0
    # ASSAY_ANALYZER_GRACE_S: an analyzer asked to stop (SIGTERM) finishes its runs for this long, then hands the
    # rest back to the orchestrator (a `shutting_down` frame), which runs them on another replica or later
    analyzer_grace_s: float = 30.0
    stale_task_s: float  # ASSAY_STALE_TASK_S: a running task silent this long is failed (by the persister)
    pending_limit_s: float  # ASSAY_PENDING_LIMIT_S: a task still pending after this long is failed
    tool_timeout_s: float  # ASSAY_TOOL_TIMEOUT_S: default timeout of one tool subprocess
    tool_concurrency: int  # ASSAY_TOOL_CONCURRENCY: tool subprocesses one analyzer runs at once (CPU budget)
    ai_base_url: str  # ASSAY_AI_BASE_URL: OpenAI-compatible chat-completions API
    ai_api_key: str | None  # ASSAY_AI_API_KEY (or OPENROUTER_API_KEY)
    ai_model: str  # ASSAY_AI_MODEL
    ai_timeout_s: float  # ASSAY_AI_TIMEOUT_S
    # ASSAY_UMASK: files and folders Assay creates are its user's only (077); `027` shares them with the group
    # (shared/file_modes.py; others are never let in)
    umask: int = 0o077
    # ASSAY_NPM_REGISTRY: the registry whose advisory database npm-audit asks (never one an app's .npmrc names)
    npm_registry: str = "https://registry.npmjs.org/"
    # Load generator defaults (the performance analyzer's `load` tool); a request's options.load overrides them.
    perf_requests: int = 200  # ASSAY_PERF_REQUESTS: requests per URL
    perf_concurrency: int = 10  # ASSAY_PERF_CONCURRENCY: requests in flight per URL
    perf_duration_s: float = 10.0  # ASSAY_PERF_DURATION_S: cap on the time spent issuing requests to one URL
    perf_timeout_s: float = 5.0  # ASSAY_PERF_TIMEOUT_S: timeout of one request
    perf_error_rate: float = 0.05  # ASSAY_PERF_ERROR_RATE: error rate above which a URL gets a finding
    perf_p99_ms: float = 1000.0  # ASSAY_PERF_P99_MS: p99 latency above which a URL gets a finding
    # Wire security (NATS users, analyzer handshake, targets policy, load ceilings).
    nats_creds: str | None = (
        None  # ASSAY_NATS_CREDS: `user:password` or a .creds file path, for ASSAY_NATS_URL
    )
    analyzer_token: str | None = None  # ASSAY_ANALYZER_TOKEN: bearer token analyzers require in the handshake
    target_allow: tuple[
        str, ...
    ] = ()  # ASSAY_TARGET_ALLOW: extra `host[:port]` targets (default: loopback only)
    load_max_requests: int = 2000  # ASSAY_LOAD_MAX_REQUESTS: ceiling on the requests of one task's load run
    load_max_concurrency: int = (
        32  # ASSAY_LOAD_MAX_CONCURRENCY: ceiling on requests in flight in one load run
    )
    load_max_duration_s: float = 60.0  # ASSAY_LOAD_MAX_DURATION_S: ceiling on the time one load run may take
    # The dynamic analyzer's active checks (services/analyzers/dynamic): bounds of what they send to an app.
    attack_max_requests: int = 400  # ASSAY_ATTACK_MAX_REQUESTS: requests one active check may send
    attack_max_s: float = 40.0  # ASSAY_ATTACK_MAX_S: seconds one active check may take
    attack_task_max_requests: int = (
        4000  # ASSAY_ATTACK_TASK_MAX_REQUESTS: requests of every check of one task
    )
    crawl_max_pages: int = 40  # ASSAY_CRAWL_MAX_PAGES: GETs of the surface's crawl
    scanner_max_s: float = 45.0  # ASSAY_SCANNER_MAX_S: seconds the established scanner (wapiti) may take
    auth: bool = True  # ASSAY_AUTH: `off` serves the API without tokens (refused unless bound to loopback)
    # ASSAY_TOKEN_CACHE_S: a verified token is trusted this long without checking it again (0: check every
    # request); a token revoked through another gateway or `assay token revoke --direct` is refused after it.
    token_cache_s: float = 5.0
    max_body_bytes: int = 262_144  # ASSAY_MAX_BODY_BYTES: largest request body the gateway reads (413 beyond)
    token: str | None = None  # ASSAY_TOKEN: the CLI's API token; unset → the file `assay up` saved
    config_dir: Path  # XDG_CONFIG_HOME/assay (default ~/.config/assay): where the CLI keeps its tokens
    # The app runner (services/orchestrator/apps): apps Assay starts itself, each in a bubblewrap sandbox.
    app_sandbox: str = "bwrap"  # ASSAY_APP_SANDBOX: bwrap, or off (unsandboxed: unsafe, warned at start)
    app_concurrency: int = 2  # ASSAY_APP_CONCURRENCY: apps one orchestrator runs at once (budget)
    app_python: str = "/usr/bin/python3"  # ASSAY_APP_PYTHON: interpreter of the apps' virtualenvs
    app_work_dir: Path = Path("var/apps")  # ASSAY_APP_WORK_DIR: apps' copies, venvs and node_modules by hash
    app_prepare_timeout_s: float = 300.0  # ASSAY_APP_PREPARE_TIMEOUT_S: each step (venv, pip, npm)
    app_start_timeout_s: float = 60.0  # ASSAY_APP_START_TIMEOUT_S: until the app answers on its ports
    app_wall_s: float = 1800.0  # ASSAY_APP_WALL_S: longest run of one app
    app_cpu_s: int = 600  # ASSAY_APP_CPU_S: CPU seconds of each app process (RLIMIT_CPU)
    app_memory_mb: int = 1024  # ASSAY_APP_MEMORY_MB: address space of each app process (RLIMIT_AS)
    app_processes: int = 64  # ASSAY_APP_PROCESSES: processes and threads in one sandbox (RLIMIT_NPROC)
    app_open_files: int = 256  # ASSAY_APP_OPEN_FILES: open files of each app process (RLIMIT_NOFILE)
    # Throughput of the consumer loops (shared/consuming.py).
    orchestrator_prefetch: int = (
        8  # ASSAY_ORCHESTRATOR_PREFETCH: requests of one priority held ahead per replica
    )
    persister_concurrency: int = 32  # ASSAY_PERSISTER_CONCURRENCY: messages one persister works on at once
    persister_prefetch: int = (
        256  # ASSAY_PERSISTER_PREFETCH: messages of one durable held ahead by the persister
    )
    batch_max_tasks: int = 1000  # ASSAY_BATCH_MAX_TASKS: tasks one batch may queue
    # Metrics (shared/metrics.py): the gateway serves /metrics on its own port; every other process on its own.
    metrics_host: str = "127.0.0.1"  # ASSAY_METRICS_HOST: where the services' /metrics listeners bind
    metrics_port: int | None = None  # ASSAY_METRICS_PORT: this process's /metrics port (unset: no listener)
    metrics_port_base: int = 9464  # ASSAY_METRICS_PORT_BASE: `assay up` gives its services ports from here on
    # ASSAY_TRACE_QUERY_URL: a Jaeger-compatible query API (`<url>/api/traces/<id>`) the gateway reads a task's
    # trace from; unset: from the span files under ASSAY_TRACE_DIR
    trace_query_url: str | None = None
    # ASSAY_IDEMPOTENCY_TTL_S: how long an `Idempotency-Key` of the accepting routes returns its first answer
    idempotency_ttl_s: float = 86400.0
    # ASSAY_RESULTS_WRITE_LIMIT_S: how long the persister retries a results folder (or staging) it cannot write
    # (permissions, disk full) before the task is failed with the reason
    results_write_limit_s: float = 300.0
    # Content-addressed reuse of tool runs (services/analyzers/base/reuse.py): ASSAY_REUSE_DIR holds the stored
    # outputs (default <var>/reuse, shared by the analyzer replicas of one host); ASSAY_REUSE_MAX_BYTES bounds it (the
    # least recently used go first; 0 turns reuse off).
    reuse_dir: Path = Path("var/reuse")
    reuse_max_bytes: int = 512 * MIB
    # ASSAY_WARM_TOOLS: Python tools that offer it (pylint) run in a warm server forked per run instead of a cold
    # process each time (services/analyzers/static/tools/fork_server.py); off: always the command line
    warm_tools: bool = True
    # ASSAY_TOOL_CACHE_DIR: the caches tools keep of what does not change between apps (mypy's of the standard library
    # and the installed packages)
    tool_cache_dir: Path = Path("var/tool-cache")


def _path(env: Mapping[str, str], name: str, default: str) -> Path:
    return Path(env.get(name) or default).expanduser().absolute()


def _switch(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = (env.get(name) or "").strip().lower()
    if not value:
        return default
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise ValueError(f"{name}={value!r}: expected on or off")


def url_list(value: str) -> list[str]:
    """The non-empty parts of a comma-separated list of URLs."""
    return [part.strip() for part in value.split(",") if part.strip()]


def cluster_replicas(servers: int) -> int:
    """Replicas of a stream on `servers` nodes: 3 (any one node may fail) from three nodes on, else 1."""
    return 3 if servers >= 3 else 1


def _retention(env: Mapping[str, str], prefix: str, default: Retention) -> Retention:
    age_name, bytes_name = f"ASSAY_{prefix}_MAX_AGE_S", f"ASSAY_{prefix}_MAX_BYTES"
    max_age_s = float(env.get(age_name) or default.max_age_s)
    max_bytes = int(env.get(bytes_name) or default.max_bytes)
    if max_age_s < 0 or 0 < max_age_s < DUPLICATE_WINDOW_S:
        raise ValueError(
            f"{age_name}={max_age_s:g}: use 0 (no age limit) or at least {DUPLICATE_WINDOW_S:g} s, "
            "the window in which JetStream de-duplicates a repeated publish"
        )
    if max_bytes == 0 or max_bytes < -1:
        raise ValueError(f"{bytes_name}={max_bytes}: use a positive number of bytes, or -1 for no size limit")
    return Retention(max_age_s, max_bytes)


def _jetstream(env: Mapping[str, str]) -> JetStreamLayout:
    default = JetStreamLayout()
    servers = len(url_list(env.get("ASSAY_NATS_URL") or ""))
    replicas = int(env.get("ASSAY_NATS_REPLICAS") or cluster_replicas(servers))
    if not 1 <= replicas <= 5:
        raise ValueError(f"ASSAY_NATS_REPLICAS={replicas}: JetStream keeps 1 to 5 replicas")
    return JetStreamLayout(
        replicas=replicas,
        requests=_retention(env, "REQUESTS", default.requests),
        events=_retention(env, "EVENTS", default.events),
        dead_letters=_retention(env, "DLQ", default.dead_letters),
        tasks_bucket=_retention(env, "TASKS_BUCKET", default.tasks_bucket),
        artifacts=_retention(env, "ARTIFACTS", default.artifacts),
    )


def _analyzer_urls(env: Mapping[str, str]) -> dict[str, list[str]]:
    return {
        name: url_list(env.get(f"ASSAY_{name.upper()}_URLS") or f"ws://127.0.0.1:{port}")
        for name, port in DEFAULT_ANALYZER_PORTS.items()
    }


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    var_dir = _path(env, "ASSAY_VAR_DIR", "var")
    default_db = f"sqlite+aiosqlite:///{var_dir / 'assay.db'}"
    return Settings(
        nats_url=env.get("ASSAY_NATS_URL") or None,
        jetstream=_jetstream(env),
        database_url=env.get("ASSAY_DATABASE_URL") or default_db,
        results_dir=_path(env, "ASSAY_RESULTS_DIR", "results"),
        apps_dir=_path(env, "ASSAY_APPS_DIR", "generated/apps"),
        var_dir=var_dir,
        gateway_url=(env.get("ASSAY_GATEWAY_URL") or "http://127.0.0.1:8000").rstrip("/"),
        analyzer_urls=_analyzer_urls(env),
        log_level=env.get("ASSAY_LOG_LEVEL") or "INFO",
        trace_dir=_path(env, "ASSAY_TRACE_DIR", str(var_dir / "traces")),
        ack_wait_s=float(env.get("ASSAY_ACK_WAIT_S") or 30),
        max_deliver=int(env.get("ASSAY_MAX_DELIVER") or 5),
        task_deadline_s=float(env.get("ASSAY_TASK_DEADLINE_S") or 900),
        tasks_per_orchestrator=int(env.get("ASSAY_ORCHESTRATOR_CONCURRENCY") or 64),
        heartbeat_timeout_s=float(env.get("ASSAY_HEARTBEAT_TIMEOUT_S") or 15),
        analyzer_outage_s=float(env.get("ASSAY_ANALYZER_OUTAGE_S") or 300),
        analyzer_grace_s=float(env.get("ASSAY_ANALYZER_GRACE_S") or 30),
        stale_task_s=float(env.get("ASSAY_STALE_TASK_S") or 600),
        pending_limit_s=float(env.get("ASSAY_PENDING_LIMIT_S") or 86400),
        tool_timeout_s=float(env.get("ASSAY_TOOL_TIMEOUT_S") or 300),
        tool_concurrency=int(env.get("ASSAY_TOOL_CONCURRENCY") or max(1, os.cpu_count() or 1)),
        ai_base_url=(env.get("ASSAY_AI_BASE_URL") or "https://openrouter.ai/api/v1").rstrip("/"),
        ai_api_key=env.get("ASSAY_AI_API_KEY") or env.get("OPENROUTER_API_KEY") or None,
        ai_model=env.get("ASSAY_AI_MODEL") or "openai/gpt-4o-mini",
        ai_timeout_s=float(env.get("ASSAY_AI_TIMEOUT_S") or 120),
        npm_registry=env.get("ASSAY_NPM_REGISTRY") or "https://registry.npmjs.org/",
        umask=_umask(env.get("ASSAY_UMASK")),
        perf_requests=int(env.get("ASSAY_PERF_REQUESTS") or 200),
        perf_concurrency=int(env.get("ASSAY_PERF_CONCURRENCY") or 10),
        perf_duration_s=float(env.get("ASSAY_PERF_DURATION_S") or 10),
        perf_timeout_s=float(env.get("ASSAY_PERF_TIMEOUT_S") or 5),
        perf_error_rate=float(env.get("ASSAY_PERF_ERROR_RATE") or 0.05),
        perf_p99_ms=float(env.get("ASSAY_PERF_P99_MS") or 1000),
        nats_creds=env.get("ASSAY_NATS_CREDS") or None,
        analyzer_token=env.get("ASSAY_ANALYZER_TOKEN") or None,
        target_allow=tuple(
            part.strip() for part in (env.get("ASSAY_TARGET_ALLOW") or "").split(",") if part.strip()
        ),
        load_max_requests=int(env.get("ASSAY_LOAD_MAX_REQUESTS") or 2000),
        load_max_concurrency=int(env.get("ASSAY_LOAD_MAX_CONCURRENCY") or 32),
        load_max_duration_s=float(env.get("ASSAY_LOAD_MAX_DURATION_S") or 60),
        attack_max_requests=int(env.get("ASSAY_ATTACK_MAX_REQUESTS") or 400),
        attack_max_s=float(env.get("ASSAY_ATTACK_MAX_S") or 40),
        attack_task_max_requests=int(env.get("ASSAY_ATTACK_TASK_MAX_REQUESTS") or 4000),
        crawl_max_pages=int(env.get("ASSAY_CRAWL_MAX_PAGES") or 40),
        scanner_max_s=float(env.get("ASSAY_SCANNER_MAX_S") or 45),
        auth=_switch(env, "ASSAY_AUTH", default=True),
        token_cache_s=float(env.get("ASSAY_TOKEN_CACHE_S") or 5),
        max_body_bytes=int(env.get("ASSAY_MAX_BODY_BYTES") or 262_144),
        token=env.get("ASSAY_TOKEN") or None,
        config_dir=_path(env, "XDG_CONFIG_HOME", "~/.config") / "assay",
        app_sandbox=_app_sandbox(env),
        app_concurrency=int(env.get("ASSAY_APP_CONCURRENCY") or 2),
        app_python=env.get("ASSAY_APP_PYTHON") or "/usr/bin/python3",
        app_work_dir=_path(env, "ASSAY_APP_WORK_DIR", str(var_dir / "apps")),
        app_prepare_timeout_s=float(env.get("ASSAY_APP_PREPARE_TIMEOUT_S") or 300),
        app_start_timeout_s=float(env.get("ASSAY_APP_START_TIMEOUT_S") or 60),
        app_wall_s=float(env.get("ASSAY_APP_WALL_S") or 1800),
        app_cpu_s=int(env.get("ASSAY_APP_CPU_S") or 600),
        app_memory_mb=int(env.get("ASSAY_APP_MEMORY_MB") or 1024),
        app_processes=int(env.get("ASSAY_APP_PROCESSES") or 64),
        app_open_files=int(env.get("ASSAY_APP_OPEN_FILES") or 256),
        orchestrator_prefetch=int(env.get("ASSAY_ORCHESTRATOR_PREFETCH") or 8),
        persister_concurrency=int(env.get("ASSAY_PERSISTER_CONCURRENCY") or 32),
        persister_prefetch=int(env.get("ASSAY_PERSISTER_PREFETCH") or 256),
        batch_max_tasks=int(env.get("ASSAY_BATCH_MAX_TASKS") or 1000),
        metrics_host=env.get("ASSAY_METRICS_HOST") or "127.0.0.1",
        metrics_port=int(env["ASSAY_METRICS_PORT"]) if env.get("ASSAY_METRICS_PORT") else None,
        metrics_port_base=int(env.get("ASSAY_METRICS_PORT_BASE") or 9464),
        trace_query_url=(env.get("ASSAY_TRACE_QUERY_URL") or "").rstrip("/") or None,
        idempotency_ttl_s=float(env.get("ASSAY_IDEMPOTENCY_TTL_S") or 86400),
        results_write_limit_s=float(env.get("ASSAY_RESULTS_WRITE_LIMIT_S") or 300),
        reuse_dir=_path(env, "ASSAY_REUSE_DIR", str(var_dir / "reuse")),
        reuse_max_bytes=_reuse_bytes(env.get("ASSAY_REUSE_MAX_BYTES")),
        warm_tools=_switch(env, "ASSAY_WARM_TOOLS", default=True),
        tool_cache_dir=_path(env, "ASSAY_TOOL_CACHE_DIR", str(var_dir / "tool-cache")),
    )


def _reuse_bytes(value: str | None) -> int:
    """ASSAY_REUSE_MAX_BYTES: 0 (off) or a positive bound of the reuse store."""
    max_bytes = int(value) if value else 512 * MIB
    if max_bytes < 0:
        raise ValueError(f"ASSAY_REUSE_MAX_BYTES={max_bytes}: use 0 (reuse off) or a positive number of bytes")
    return max_bytes


def _umask(value: str | None) -> int:
    """ASSAY_UMASK: octal digits (`077`, `027`); refused when it would let others read Assay's files."""
    if not value:
        return 0o077
    try:
        umask = int(value, 8)
    except ValueError:
        raise ValueError(f"ASSAY_UMASK={value!r} is not an octal umask like 077 or 027") from None
    if not 0 <= umask <= 0o777 or umask & 0o007 != 0o007:
        raise ValueError(f"ASSAY_UMASK={value!r} would let other users read Assay's files: end it in 7 (077, 027)")
    return umask


def _app_sandbox(env: Mapping[str, str]) -> str:
    mode = env.get("ASSAY_APP_SANDBOX") or "bwrap"
    if mode not in ("bwrap", "off"):
        raise ValueError(f"ASSAY_APP_SANDBOX={mode!r} is not allowed: use bwrap (the default) or off")
    return mode
