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


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    nats_url: str | None  # ASSAY_NATS_URL: comma-separated servers; unset → `assay up` embeds nats-server
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
    stale_task_s: float  # ASSAY_STALE_TASK_S: a running task silent this long is failed (by the persister)
    pending_limit_s: float  # ASSAY_PENDING_LIMIT_S: a task still pending after this long is failed
    tool_timeout_s: float  # ASSAY_TOOL_TIMEOUT_S: default timeout of one tool subprocess
    tool_concurrency: int  # ASSAY_TOOL_CONCURRENCY: tool subprocesses one analyzer runs at once (CPU budget)
    ai_base_url: str  # ASSAY_AI_BASE_URL: OpenAI-compatible chat-completions API
    ai_api_key: str | None  # ASSAY_AI_API_KEY (or OPENROUTER_API_KEY)
    ai_model: str  # ASSAY_AI_MODEL
    ai_timeout_s: float  # ASSAY_AI_TIMEOUT_S
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
    # Metrics (shared/metrics.py): the gateway serves /metrics on its own port; every other process on its own.
    metrics_host: str = "127.0.0.1"  # ASSAY_METRICS_HOST: where the services' /metrics listeners bind
    metrics_port: int | None = None  # ASSAY_METRICS_PORT: this process's /metrics port (unset: no listener)
    metrics_port_base: int = 9464  # ASSAY_METRICS_PORT_BASE: `assay up` gives its services ports from here on


def _path(env: Mapping[str, str], name: str, default: str) -> Path:
    return Path(env.get(name) or default).expanduser().absolute()


def url_list(value: str) -> list[str]:
    """The non-empty parts of a comma-separated list of URLs."""
    return [part.strip() for part in value.split(",") if part.strip()]


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
        tasks_per_orchestrator=int(env.get("ASSAY_ORCHESTRATOR_CONCURRENCY") or 2),
        heartbeat_timeout_s=float(env.get("ASSAY_HEARTBEAT_TIMEOUT_S") or 15),
        stale_task_s=float(env.get("ASSAY_STALE_TASK_S") or 600),
        pending_limit_s=float(env.get("ASSAY_PENDING_LIMIT_S") or 86400),
        tool_timeout_s=float(env.get("ASSAY_TOOL_TIMEOUT_S") or 300),
        tool_concurrency=int(env.get("ASSAY_TOOL_CONCURRENCY") or max(1, os.cpu_count() or 1)),
        ai_base_url=(env.get("ASSAY_AI_BASE_URL") or "https://openrouter.ai/api/v1").rstrip("/"),
        ai_api_key=env.get("ASSAY_AI_API_KEY") or env.get("OPENROUTER_API_KEY") or None,
        ai_model=env.get("ASSAY_AI_MODEL") or "openai/gpt-4o-mini",
        ai_timeout_s=float(env.get("ASSAY_AI_TIMEOUT_S") or 120),
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
        metrics_host=env.get("ASSAY_METRICS_HOST") or "127.0.0.1",
        metrics_port=int(env["ASSAY_METRICS_PORT"]) if env.get("ASSAY_METRICS_PORT") else None,
        metrics_port_base=int(env.get("ASSAY_METRICS_PORT_BASE") or 9464),
    )
