"""Every setting Assay reads, each declared once: one field of `Settings` (or of a group of them, `JetStreamLayout`).

A declaration says everything there is to say about a setting, in one place:

    ack_wait_s: Annotated[float, Var("ASSAY_ACK_WAIT_S", "JetStream ack wait; …")] = 30.0

its name and type in the code, the environment variable it is read from, what it means (the README's words) and
its default (the field's). `load_settings` walks the fields in order: an unset or empty variable leaves the default;
a set one is converted to the field's type (numbers and `true`/`false` as msgspec reads them, a path made absolute,
a tuple from a comma-separated list), or by the declaration's `parse` (which refuses a bad value, naming the
variable). A default that follows from other settings (a folder under ASSAY_VAR_DIR) is the declaration's `derive`;
`shown` is what the README says of a default that is not a plain value. Relative paths are resolved from the folder
`assay` was started in (services inherit it from the supervisor).

The README's configuration table is generated from these declarations: `python -m shared.operations.config` writes it,
`python -m shared.operations.config --check` (in `make lint`) fails when the README differs.

To add a setting: one field, as above, then `python -m shared.operations.config`. To convert one declared the old way (a field
with its variable in a comment, and a line `name=float(env.get("ASSAY_…") or 30)` in `load_settings`): move the
comment's words into a `Var` on the field, keep the default on the field (a check the line made, as a `parse` that
raises ConfigError), and drop the line: `load_settings` lists no field. A field without a `Var` is refused, saying so.
"""

# No `from __future__ import annotations`: the declarations' `Var`s are made when the classes are, so that their
# functions see this module's names.
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import msgspec

from shared.operations.errors import ConfigError
from shared.operations.ports import PortRange, parse_port_range

ANALYZERS = ("static", "dynamic", "performance", "ai")
DEFAULT_ANALYZER_PORTS = {"static": 8101, "dynamic": 8102, "performance": 8103, "ai": 8104}
_FIRST_PORT, *_, _LAST_PORT = DEFAULT_ANALYZER_PORTS.values()  # as the README shows them

DAY_S = 24 * 3600.0
MIB = 1024 * 1024
GIB = 1024 * MIB
DUPLICATE_WINDOW_S = 120.0  # JetStream's publish de-duplication window; a stream's max age may not be shorter

README = Path(__file__).resolve().parents[2] / "README.md"
TABLE_START = "<!-- settings: generated from shared/operations/config.py by `python -m shared.operations.config`; do not edit -->"
TABLE_END = "<!-- /settings -->"


@dataclass(frozen=True)
class Var:
    """How one setting is read and documented (the field it annotates gives its type and default)."""

    names: str | tuple[str, ...]  # the variable; several: the first one set is read (or all, by `read`)
    meaning: str  # what it sets, as the README says it
    # A set value → the setting (default: converted to the field's type).
    parse: Callable[[str], Any] | None = None
    # The default, from the settings declared before it.
    derive: Callable[[Mapping[str, Any]], Any] | None = None
    # The default as the README shows it (default: the field's default, in backticks).
    shown: str | None = None
    # Reads a setting made of several variables: (environment, its names, its default) → the setting.
    read: Callable[[Mapping[str, str], tuple[str, ...], Any], Any] | None = None

    @property
    def variables(self) -> tuple[str, ...]:
        return (self.names,) if isinstance(self.names, str) else self.names


def _path(value: str) -> Path:
    return Path(value).expanduser().absolute()


def _switch(value: str) -> bool:
    word = value.strip().lower()
    if word in ("on", "true", "1", "yes"):
        return True
    if word in ("off", "false", "0", "no"):
        return False
    raise ConfigError("expected on or off")


def url_list(value: str) -> list[str]:
    """The non-empty parts of a comma-separated list of URLs."""
    return [part.strip() for part in value.split(",") if part.strip()]


def cluster_replicas(servers: int) -> int:
    """Replicas of a stream on `servers` nodes: 3 (any one node may fail) from three nodes on, else 1."""
    return 3 if servers >= 3 else 1


def _replicas(value: str) -> int:
    replicas = int(value)
    if not 1 <= replicas <= 5:
        raise ConfigError("JetStream keeps 1 to 5 replicas")
    return replicas


def _umask(value: str) -> int:
    """Octal digits (`077`, `027`); refused when it would let others read Assay's files."""
    try:
        umask = int(value, 8)
    except ValueError:
        raise ConfigError("not an octal umask like 077 or 027") from None
    if not 0 <= umask <= 0o777 or umask & 0o007 != 0o007:
        raise ConfigError("would let other users read Assay's files: end it in 7 (077, 027)")
    return umask


def _without_slash(value: str) -> str:
    return value.rstrip("/")


class Retention(msgspec.Struct, frozen=True):
    """How long a stream or bucket keeps a message, and how much it may hold in all (JetStream's max_age and
    max_bytes). A full stream refuses new messages (discard policy `new`) rather than drop old ones a consumer may
    not have read yet; age removes them."""

    max_age_s: float  # 0: no age limit
    max_bytes: int  # -1: no size limit


def _retention(env: Mapping[str, str], names: tuple[str, ...], default: Retention) -> Retention:
    age_name, bytes_name = names
    max_age_s = float(env.get(age_name) or default.max_age_s)
    max_bytes = int(env.get(bytes_name) or default.max_bytes)
    if max_age_s < 0 or 0 < max_age_s < DUPLICATE_WINDOW_S:
        raise ConfigError(
            f"{age_name}={max_age_s:g}: use 0 (no age limit) or at least {DUPLICATE_WINDOW_S:g} s, "
            "the window in which JetStream de-duplicates a repeated publish"
        )
    if max_bytes == 0 or max_bytes < -1:
        raise ConfigError(
            f"{bytes_name}={max_bytes}: use a positive number of bytes, or -1 for no size limit"
        )
    return Retention(max_age_s, max_bytes)


def _limits(stream: str, meaning: str) -> Var:
    """The two variables of a stream's or bucket's `Retention`."""
    prefix = f"ASSAY_{stream}"
    return Var((f"{prefix}_MAX_AGE_S", f"{prefix}_MAX_BYTES"), meaning, read=_retention)


class JetStreamLayout(msgspec.Struct, frozen=True, kw_only=True):
    """Replicas and limits of Assay's streams and buckets, applied when they are declared (shared/jetstream/streams.py)."""

    replicas: Annotated[
        int,
        Var(
            "ASSAY_NATS_REPLICAS",
            "copies JetStream keeps of every stream and bucket (1–5); `assay up --cluster 3` sets 3",
            parse=_replicas,
            derive=lambda known: cluster_replicas(len(url_list(known["nats_url"] or ""))),
            shown="3 when `ASSAY_NATS_URL` lists three or more servers, else 1",
        ),
    ] = 1
    requests: Annotated[
        Retention,
        _limits(
            "REQUESTS",
            "limits of `ASSAY_REQUESTS`; for every stream and bucket, age 0 = none (else at least 120), "
            "bytes -1 = none; a full one refuses new messages",
        ),
    ] = Retention(7 * DAY_S, GIB)
    events: Annotated[
        Retention,
        _limits("EVENTS", "limits of `ASSAY_EVENTS`"),
    ] = Retention(7 * DAY_S, 10 * GIB)
    dead_letters: Annotated[Retention, _limits("DLQ", "limits of `ASSAY_DLQ`")] = Retention(30 * DAY_S, GIB)
    tasks_bucket: Annotated[
        Retention, _limits("TASKS_BUCKET", "limits of the `assay-tasks` bucket (its age: the entries' TTL)")
    ] = Retention(DAY_S, 256 * MIB)
    artifacts: Annotated[
        Retention,
        _limits(
            "ARTIFACTS", "limits of the `assay-artifacts` object store (results too large for a message)"
        ),
    ] = Retention(7 * DAY_S, 10 * GIB)


def _analyzer_urls(env: Mapping[str, str], names: tuple[str, ...], _default: Any) -> dict[str, list[str]]:
    return {
        analyzer: url_list(env.get(name) or f"ws://127.0.0.1:{DEFAULT_ANALYZER_PORTS[analyzer]}")
        for analyzer, name in zip(ANALYZERS, names, strict=True)
    }


def _in_var_dir(name: str) -> Callable[[Mapping[str, Any]], Path]:
    return lambda known: known["var_dir"] / name


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every setting, read by `load_settings`; the README's configuration table lists them in this order."""

    nats_url: Annotated[
        str | None, Var("ASSAY_NATS_URL", "NATS server(s), comma-separated", shown="unset → embedded server")
    ] = None
    var_dir: Annotated[
        Path,
        Var("ASSAY_VAR_DIR", "embedded NATS store, SQLite file, span files"),
    ] = Path("var")
    database_url: Annotated[
        str,
        Var(
            "ASSAY_DATABASE_URL",
            "any SQLAlchemy async URL, e.g. `postgresql+asyncpg://user@host/db`",
            derive=lambda known: f"sqlite+aiosqlite:///{known['var_dir'] / 'assay.db'}",
        ),
    ]
    results_dir: Annotated[Path, Var("ASSAY_RESULTS_DIR", "root of the result folders")] = Path("results")
    apps_dir: Annotated[
        Path, Var("ASSAY_APPS_DIR", "root of the apps to analyze (`<model>/app<N>/{backend,frontend}`)")
    ] = Path("generated/apps")
    gateway_url: Annotated[
        str,
        Var(
            "ASSAY_GATEWAY_URL", "where the gateway listens and where the CLI finds it", parse=_without_slash
        ),
    ] = "http://127.0.0.1:8000"
    analyzer_urls: Annotated[
        dict[str, list[str]],
        Var(
            tuple(f"ASSAY_{analyzer.upper()}_URLS" for analyzer in ANALYZERS),
            "WebSocket URLs of each analyzer's replicas, comma-separated",
            read=_analyzer_urls,
            shown=f"`ws://127.0.0.1:{_FIRST_PORT}` … `{_LAST_PORT}`",
        ),
    ]
    log_level: Annotated[
        str, Var("ASSAY_LOG_LEVEL", "log level (logs are JSON lines with `task_id` and `trace_id`)")
    ] = "INFO"
    umask: Annotated[
        int,
        Var(
            "ASSAY_UMASK",
            "files and folders Assay creates (database with its WAL, span files, result folders, `var/`) are its "
            "user's only (0600/0700); `027` lets the group read them; a value that lets others in is refused",
            parse=_umask,
            shown="`077`",
        ),
    ] = 0o077
    trace_dir: Annotated[
        Path,
        Var(
            "ASSAY_TRACE_DIR",
            "span files when no OTLP endpoint is set",
            derive=_in_var_dir("traces"),
        ),
    ]
    ack_wait_s: Annotated[
        float, Var("ASSAY_ACK_WAIT_S", "JetStream ack wait; long runs report `in_progress` well before it")
    ] = 30.0
    max_deliver: Annotated[
        int, Var("ASSAY_MAX_DELIVER", "deliveries before a message goes to `ASSAY_DLQ`")
    ] = 5
    task_deadline_s: Annotated[
        float,
        Var("ASSAY_TASK_DEADLINE_S", "default deadline of one analysis"),
    ] = 900.0
    tasks_per_orchestrator: Annotated[
        int,
        Var(
            "ASSAY_ORCHESTRATOR_CONCURRENCY",
            "tasks one orchestrator replica runs at once (it mostly waits on analyzers)",
        ),
    ] = 64
    heartbeat_timeout_s: Annotated[
        float, Var("ASSAY_HEARTBEAT_TIMEOUT_S", "analyzer silence that fails a run")
    ] = 15.0
    analyzer_outage_s: Annotated[
        float,
        Var(
            "ASSAY_ANALYZER_OUTAGE_S",
            "while no replica of an analyzer is healthy, runs that need it wait this long (from the outage's "
            "start) before they fail",
        ),
    ] = 300.0
    analyzer_grace_s: Annotated[
        float,
        Var(
            "ASSAY_ANALYZER_GRACE_S",
            "an analyzer asked to stop (SIGTERM) lets its runs finish this long, then hands the rest back "
            "(a `shutting_down` frame) to run elsewhere",
        ),
    ] = 30.0
    stale_task_s: Annotated[
        float,
        Var("ASSAY_STALE_TASK_S", "a running task with no event for this long is failed (by the persister)"),
    ] = 600.0
    pending_limit_s: Annotated[
        float, Var("ASSAY_PENDING_LIMIT_S", "a task no orchestrator has started after this long is failed")
    ] = 86400.0
    tool_timeout_s: Annotated[
        float,
        Var("ASSAY_TOOL_TIMEOUT_S", "default timeout of one tool process"),
    ] = 300.0
    tool_concurrency: Annotated[
        int,
        Var(
            "ASSAY_TOOL_CONCURRENCY",
            "tool processes one analyzer runs at once (its CPU budget)",
            derive=lambda _known: max(1, os.cpu_count() or 1),
            shown="CPU count",
        ),
    ]
    # Load generator defaults (the performance analyzer's `load` tool); a request's options.load overrides them.
    perf_requests: Annotated[
        int,
        Var(
            "ASSAY_PERF_REQUESTS",
            "load test: requests per URL (a request's `options.load.requests` overrides it)",
        ),
    ] = 200
    perf_concurrency: Annotated[
        int, Var("ASSAY_PERF_CONCURRENCY", "load test: requests in flight per URL")
    ] = 10
    perf_duration_s: Annotated[
        float, Var("ASSAY_PERF_DURATION_S", "load test: cap on the time spent on one URL")
    ] = 10.0
    perf_timeout_s: Annotated[float, Var("ASSAY_PERF_TIMEOUT_S", "load test: timeout of one request")] = 5.0
    perf_error_rate: Annotated[
        float, Var("ASSAY_PERF_ERROR_RATE", "error rate above which a URL gets a finding")
    ] = 0.05
    perf_p99_ms: Annotated[
        float, Var("ASSAY_PERF_P99_MS", "p99 latency (ms) above which a URL gets a finding")
    ] = 1000.0
    ai_base_url: Annotated[
        str, Var("ASSAY_AI_BASE_URL", "OpenAI-compatible chat-completions API", parse=_without_slash)
    ] = "https://openrouter.ai/api/v1"
    ai_api_key: Annotated[
        str | None,
        Var(
            ("ASSAY_AI_API_KEY", "OPENROUTER_API_KEY"),
            "API key of the model (`OPENROUTER_API_KEY` is read when `ASSAY_AI_API_KEY` is unset)",
            shown="unset → AI tools `skipped`",
        ),
    ] = None
    ai_model: Annotated[str, Var("ASSAY_AI_MODEL", "model for reviews")] = "openai/gpt-4o-mini"
    ai_timeout_s: Annotated[float, Var("ASSAY_AI_TIMEOUT_S", "timeout of one review request")] = 120.0
    npm_registry: Annotated[
        str,
        Var(
            "ASSAY_NPM_REGISTRY",
            "the registry whose advisory database npm-audit asks; an app's own `.npmrc` (registry, proxy, "
            "credentials) is never read",
        ),
    ] = "https://registry.npmjs.org/"
    # The app runner (services/orchestrator/apps): apps Assay starts itself, each in a bubblewrap sandbox.
    app_sandbox: Annotated[
        Literal["bwrap", "off"],
        Var(
            "ASSAY_APP_SANDBOX",
            "how apps run: `bwrap` (sandboxed; refused where bubblewrap is missing) or `off` (unsandboxed, unsafe, "
            "warned at start)",
        ),
    ] = "bwrap"
    app_concurrency: Annotated[
        int,
        Var(
            "ASSAY_APP_CONCURRENCY",
            "apps one orchestrator runs at once (the parallel budget), each on its own ports",
        ),
    ] = 2
    app_python: Annotated[
        str,
        Var(
            "ASSAY_APP_PYTHON",
            "interpreter of the apps' virtualenvs (must be under the system folders the sandbox shows)",
        ),
    ] = "/usr/bin/python3"
    app_work_dir: Annotated[
        Path,
        Var(
            "ASSAY_APP_WORK_DIR",
            "apps' working copies, and virtualenvs / `node_modules` cached by hash; as root, every folder above it "
            "must be searchable by others (the sandbox user, uid 65534, must reach it)",
            derive=_in_var_dir("apps"),
        ),
    ]
    app_prepare_timeout_s: Annotated[
        float, Var("ASSAY_APP_PREPARE_TIMEOUT_S", "each preparation step (virtualenv, pip, npm)")
    ] = 300.0
    app_start_timeout_s: Annotated[
        float, Var("ASSAY_APP_START_TIMEOUT_S", "until the app answers on its ports")
    ] = 60.0
    app_wall_s: Annotated[float, Var("ASSAY_APP_WALL_S", "longest run of one app")] = 1800.0
    app_cpu_s: Annotated[int, Var("ASSAY_APP_CPU_S", "CPU seconds of each app process (RLIMIT_CPU)")] = 600
    app_memory_mb: Annotated[
        int, Var("ASSAY_APP_MEMORY_MB", "address space of each app process, MiB (RLIMIT_AS)")
    ] = 1024
    app_processes: Annotated[
        int, Var("ASSAY_APP_PROCESSES", "processes and threads in one sandbox (RLIMIT_NPROC)")
    ] = 64
    app_open_files: Annotated[
        int, Var("ASSAY_APP_OPEN_FILES", "open files of each app process (RLIMIT_NOFILE)")
    ] = 256
    port_range: Annotated[
        PortRange | None,
        Var(
            "ASSAY_PORT_RANGE",
            "host ports Assay opens for itself, e.g. `40000-40999`: the embedded NATS server and its routes, the "
            "forwarders into app sandboxes (several stacks on one machine, firewalled hosts)",
            parse=parse_port_range,
            shown="unset (the kernel's ephemeral range)",
        ),
    ] = None
    # Throughput of the consumer loops (shared/jetstream/consuming.py).
    orchestrator_prefetch: Annotated[
        int,
        Var(
            "ASSAY_ORCHESTRATOR_PREFETCH",
            "requests of one priority an orchestrator replica holds ahead of its free slots",
        ),
    ] = 8
    persister_concurrency: Annotated[
        int, Var("ASSAY_PERSISTER_CONCURRENCY", "messages (of different tasks) the persister applies at once")
    ] = 32
    persister_prefetch: Annotated[
        int,
        Var(
            "ASSAY_PERSISTER_PREFETCH",
            "messages of one durable the persister holds and has not started (those waiting behind another of "
            "their task included)",
        ),
    ] = 256
    batch_max_tasks: Annotated[
        int, Var("ASSAY_BATCH_MAX_TASKS", "tasks one batch (`POST /api/batches`) may queue")
    ] = 1000
    idempotency_ttl_s: Annotated[
        float,
        Var(
            "ASSAY_IDEMPOTENCY_TTL_S",
            "how long an `Idempotency-Key` returns its first answer (then it counts as new; `assay prune` "
            "removes it)",
        ),
    ] = 86400.0
    results_write_limit_s: Annotated[
        float,
        Var(
            "ASSAY_RESULTS_WRITE_LIMIT_S",
            "how long the persister tries again a result folder the disk refuses (permissions, full) before "
            "failing the task with the reason",
        ),
    ] = 300.0
    # Wire security (NATS users, analyzer handshake, targets policy, load ceilings).
    nats_creds: Annotated[
        str | None,
        Var(
            "ASSAY_NATS_CREDS",
            "credentials for the server of `ASSAY_NATS_URL`: `user:password` or the path of a `.creds` file (TLS "
            "when the URL says `tls://`); the embedded server's come from `assay up`",
        ),
    ] = None
    analyzer_token: Annotated[
        str | None,
        Var(
            "ASSAY_ANALYZER_TOKEN",
            "bearer token the analyzers require in the WebSocket handshake and the orchestrator sends; an analyzer "
            "without one does not start",
            shown="unset → `assay up` makes one (`var/analyzer-token`)",
        ),
    ] = None
    target_allow: Annotated[
        tuple[str, ...],
        Var(
            "ASSAY_TARGET_ALLOW",
            "extra targets dynamic and performance checks may reach, comma-separated: `host`, `host:port`, "
            "`[v6]:port`, `10.0.0.0/8`",
            shown="unset → loopback on the app's `.env` ports only",
        ),
    ] = ()
    load_max_requests: Annotated[
        int,
        Var(
            "ASSAY_LOAD_MAX_REQUESTS",
            "ceiling on the requests of one task's load test, all URLs together (options can only lower it)",
        ),
    ] = 2000
    load_max_concurrency: Annotated[
        int, Var("ASSAY_LOAD_MAX_CONCURRENCY", "ceiling on the requests in flight of one load test")
    ] = 32
    load_max_duration_s: Annotated[
        float, Var("ASSAY_LOAD_MAX_DURATION_S", "ceiling on the time one load test runs")
    ] = 60.0
    # The dynamic analyzer's active checks (services/analyzers/dynamic): bounds of what they send to an app.
    attack_max_requests: Annotated[
        int,
        Var(
            "ASSAY_ATTACK_MAX_REQUESTS",
            "requests one active check of the dynamic analyzer (SQL injection, XSS …) may send to the app in one run",
        ),
    ] = 400
    attack_max_s: Annotated[
        float,
        Var("ASSAY_ATTACK_MAX_S", "seconds one active check may take (what it confirmed by then is kept)"),
    ] = 40.0
    attack_task_max_requests: Annotated[
        int, Var("ASSAY_ATTACK_TASK_MAX_REQUESTS", "requests all active checks of one task may send together")
    ] = 4000
    crawl_max_pages: Annotated[
        int,
        Var(
            "ASSAY_CRAWL_MAX_PAGES",
            "GETs of the dynamic analyzer's crawl of the running app (links, forms, scripts, a served OpenAPI "
            "document)",
        ),
    ] = 40
    scanner_max_s: Annotated[
        float,
        Var(
            "ASSAY_SCANNER_MAX_S",
            "seconds wapiti, the established scanner run beside Assay's own checks, may take",
        ),
    ] = 45.0
    auth: Annotated[
        bool,
        Var(
            "ASSAY_AUTH",
            "`off` serves the API without tokens, announced loudly at start and refused unless the gateway is bound "
            "to loopback",
            parse=_switch,
        ),
    ] = True
    max_body_bytes: Annotated[
        int, Var("ASSAY_MAX_BODY_BYTES", "largest request body the gateway reads (413 beyond)")
    ] = 262_144
    token_cache_s: Annotated[
        float,
        Var(
            "ASSAY_TOKEN_CACHE_S",
            "a verified API token is trusted this long without a new check; a token revoked through another "
            "gateway or `--direct` is refused after it (0: check every request)",
        ),
    ] = 5.0
    token: Annotated[
        str | None, Var("ASSAY_TOKEN", "the API token the CLI sends", shown="unset → the saved file")
    ] = None
    config_dir: Annotated[
        Path,
        Var(
            "XDG_CONFIG_HOME",
            "the CLI keeps its saved tokens in `<XDG_CONFIG_HOME>/assay/tokens/`",
            parse=lambda value: Path(value) / "assay",
            shown="`~/.config`",
        ),
    ] = Path("~/.config/assay")
    # Metrics (shared/telemetry/metrics.py): the gateway serves /metrics on its own port; every other process on its own.
    metrics_host: Annotated[
        str,
        Var(
            "ASSAY_METRICS_HOST",
            "where the services' own `/metrics` listeners bind (the gateway serves `/metrics` on its API, behind a "
            "`read` token)",
        ),
    ] = "127.0.0.1"
    metrics_port: Annotated[
        int | None,
        Var(
            "ASSAY_METRICS_PORT",
            "this process's Prometheus `/metrics` port; `assay up` sets it for each service and prints the list",
            shown="unset → no listener",
        ),
    ] = None
    metrics_port_base: Annotated[
        int,
        Var(
            "ASSAY_METRICS_PORT_BASE",
            "first of the `/metrics` ports `assay up` hands its services, one each in start order",
        ),
    ] = 9464
    jetstream: JetStreamLayout = JetStreamLayout()  # a group: its fields are settings of their own
    trace_query_url: Annotated[
        str | None,
        Var(
            "ASSAY_TRACE_QUERY_URL",
            "a Jaeger-compatible query API (e.g. `http://127.0.0.1:16686`) the gateway reads "
            "`GET /api/tasks/{id}/trace` from, for stacks exporting over OTLP; unset: the span files under "
            "`ASSAY_TRACE_DIR`",
            parse=lambda value: value.rstrip("/") or None,
        ),
    ] = None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from `env` (default: the process environment); ConfigError names a refused value."""
    return _load(Settings, os.environ if env is None else env, {})


S = TypeVar("S", bound=msgspec.Struct)


def _load(group: type[S], env: Mapping[str, str], known: dict[str, Any]) -> S:
    """The settings of `group` from `env`, each added to `known` (read by later defaults) as it is read."""
    values: dict[str, Any] = {}
    for name, kind, var, default in declarations(group):
        if var is None:
            values[name] = _load(kind, env, known)
        else:
            values[name] = _read(var, kind, env, var.derive(known) if var.derive else default)
        known[name] = values[name]
    return group(**values)


def declarations(group: type[msgspec.Struct]) -> list[tuple[str, Any, Var | None, Any]]:
    """(name, type, declaration, default) of each field of `group`; no declaration: a group of settings."""
    hints = get_type_hints(group, include_extras=True)
    declared = []
    for field in msgspec.structs.fields(group):
        hint = hints[field.name]
        var = next((extra for extra in getattr(hint, "__metadata__", ()) if isinstance(extra, Var)), None)
        kind = get_args(hint)[0] if var is not None else hint
        if var is None and not (isinstance(kind, type) and issubclass(kind, msgspec.Struct)):
            raise TypeError(
                f"{group.__name__}.{field.name} names no variable: declare it as "
                f'`{field.name}: Annotated[<type>, Var("ASSAY_…", "what it sets")] = <default>` '
                "(see the top of shared/operations/config.py)"
            )
        declared.append((field.name, kind, var, field.default))
    return declared


def _read(var: Var, kind: Any, env: Mapping[str, str], default: Any) -> Any:
    if var.read is not None:
        value = var.read(env, var.variables, default)
    else:
        name, raw = next(
            ((name, env[name]) for name in var.variables if env.get(name)), (var.variables[0], None)
        )
        value = default if raw is None else _converted(name, raw, var, kind)
    return _path(str(value)) if isinstance(value, Path) else value


def _converted(name: str, raw: str, var: Var, kind: Any) -> Any:
    try:
        if var.parse is not None:
            return var.parse(raw)
        if kind is Path:
            return Path(raw)
        if get_origin(kind) is Literal and raw not in get_args(kind):
            raise ConfigError(f"use {' or '.join(get_args(kind))}")
        if get_origin(kind) is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return msgspec.convert(raw, kind, strict=False)
    except (ValueError, msgspec.ValidationError) as error:  # a ConfigError is a ValueError
        raise ConfigError(f"{name}={raw}: {error}") from None


# The README's configuration table.


def _shown(value: Any) -> str:
    """A default as the README shows it."""
    if value is None or value == ():
        return "unset"
    if isinstance(value, bool):
        return "`on`" if value else "`off`"
    if isinstance(value, float):
        return f"`{int(value)}`" if value.is_integer() else f"`{value}`"
    if isinstance(value, Retention):
        return f"{_shown(value.max_age_s)}{_days(value.max_age_s)}, {_shown(value.max_bytes)}{_size(value.max_bytes)}"
    return f"`{value}`"


def _days(seconds: float) -> str:
    days = seconds / DAY_S
    return f" ({days:g} day{'s' if days != 1 else ''})" if days >= 1 and days.is_integer() else ""


def _size(size: int) -> str:
    for unit, name in ((GIB, "GiB"), (MIB, "MiB")):
        if size >= unit and size % unit == 0:
            return f" ({size // unit} {name})"
    return ""


def _rows(group: type[msgspec.Struct], known: dict[str, Any]) -> list[str]:
    """A row per setting; a derived default is shown as it follows from the defaults as declared (`var/traces`)."""
    rows = []
    for name, kind, var, default in declarations(group):
        if var is None:
            rows += _rows(kind, known)
            continue
        if var.derive is not None and var.shown is None:
            default = var.derive(known)
        known[name] = default
        names = ", ".join(f"`{variable}`" for variable in var.variables)
        rows.append(f"| {names} | {var.shown or _shown(default)} | {var.meaning} |")
    return rows


def table() -> str:
    """The README's configuration table, between its markers."""
    lines = [
        TABLE_START,
        "| variable | default | meaning |",
        "|---|---|---|",
        *_rows(Settings, {}),
        TABLE_END,
    ]
    return "\n".join(lines)


def _with_table(readme: str) -> str:
    start, end = readme.index(TABLE_START), readme.index(TABLE_END) + len(TABLE_END)
    return readme[:start] + table() + readme[end:]


def main(argv: list[str]) -> int:
    """Write the README's configuration table (`--check`: only say whether it is up to date; 1 when not)."""
    readme = README.read_text()
    written = _with_table(readme)
    if "--check" in argv:
        if written != readme:
            print(
                "README.md: the configuration table differs from shared/operations/config.py; run `python -m shared.operations.config`"
            )
            return 1
        return 0
    README.write_text(written)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
