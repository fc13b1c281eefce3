"""The options of an analysis request: `timeouts` (tool → seconds) and one typed mapping per tool
(`options.<tool>`), every key known and every value bounded.

The gateway decodes a request's options into `RequestOptions` (a bad option is a 422 naming it, before anything
is queued); the analyzers decode their part with the same types (`LoadToolOptions`, `ReviewOptions`), so what
passed the gateway never fails at run time. The load ceilings of the settings (ASSAY_LOAD_MAX_*) are applied by the
performance analyzer, which cuts a request's load to them: a request can only lower them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from shared.wire.catalog import TOOLS_BY_SERVICE

# A JSON true or false and nothing else: the gateway converts bodies leniently, where a plain bool would take 0, 1
# or "true" (schemathesis: a schema-violating request accepted).
Flag = Literal[True, False]

TOOL_NAMES = frozenset(tool for tools in TOOLS_BY_SERVICE.values() for tool in tools)
if TYPE_CHECKING:
    ToolName = str
else:  # built from the catalog, so the two cannot drift; a name outside it fails decoding
    ToolName = Literal[tuple(sorted(TOOL_NAMES))]
MIN_TIMEOUT_S = 1.0  # below this no tool can even start; a smaller value is a mistake, not a wish
Seconds = Annotated[float, msgspec.Meta(ge=MIN_TIMEOUT_S, le=86400)]

# The AI reviews' prompt budget, in characters of file text.
DEFAULT_BUDGET_CHARS = 60_000
MIN_BUDGET_CHARS = 1_000
MAX_BUDGET_CHARS = 1_000_000

MAX_PATHS = 20
UrlPath = Annotated[str, msgspec.Meta(pattern=r"^/[^\x00-\x20\x7f]*$", max_length=2048)]


class Options(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Base of every options mapping: unknown keys are refused, unset keys stay unset on the wire."""


class NoOptions(Options, frozen=True, kw_only=True):
    """A tool that takes no options: only `{}` is accepted."""


class Thresholds(Options, frozen=True, kw_only=True):
    """When a loaded URL gets a finding; unset: the configured ASSAY_PERF_ERROR_RATE / ASSAY_PERF_P99_MS."""

    error_rate: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] | None = None  # share of failed requests
    p99_ms: Annotated[float, msgspec.Meta(gt=0.0, le=3_600_000.0)] | None = None


class LoadToolOptions(Options, frozen=True, kw_only=True):
    """`options.load`; unset fields take the ASSAY_PERF_* defaults; ASSAY_LOAD_MAX_* cut what is asked."""

    requests: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None  # per URL
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=512)] | None = None
    duration_s: Annotated[float, msgspec.Meta(ge=0.1, le=3600.0)] | None = None  # per URL
    timeout_s: Annotated[float, msgspec.Meta(ge=0.1, le=300.0)] | None = None  # per request
    # Paths loaded on every target; unset: the backend's GET endpoints from requirements.json, else "/".
    paths: Annotated[list[UrlPath], msgspec.Meta(min_length=1, max_length=MAX_PATHS)] | None = None
    thresholds: Thresholds | None = None


class ReviewOptions(Options, frozen=True, kw_only=True):
    """`options.requirements-review` and `options.code-quality-review`."""

    model: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")] | None = None
    max_prompt_chars: Annotated[int, msgspec.Meta(ge=MIN_BUDGET_CHARS, le=MAX_BUDGET_CHARS)] = (
        DEFAULT_BUDGET_CHARS
    )


class Account(Options, frozen=True, kw_only=True):
    """An account of the app under test the dynamic checks act as: a username (or email) and password they log in
    with through the app's log-in route, or a bearer token sent as it is."""

    username: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=200)] | None = None
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    token: Annotated[str, msgspec.Meta(min_length=8, max_length=4096)] | None = None


class SurfaceOptions(Options, frozen=True, kw_only=True):
    """`options.surface`: up to two accounts (user A and user B); unset, Assay registers two of its own where the
    app has sign-up and log-in routes."""

    users: Annotated[list[Account], msgspec.Meta(max_length=2)] = []


class AppOptions(Options, frozen=True, kw_only=True):
    """`options.app`: how Assay starts the app it runs; `start` is a command line run in the app's backend folder
    when no start rule fits or the user knows better (services/orchestrator/apps/start_rules.py)."""

    start: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)] | None = None


class RequestOptions(Options, frozen=True, kw_only=True):
    """`options` of an analysis request. One field per tool of the catalog (tests keep the two in step), and `app`."""

    timeouts: dict[ToolName, Seconds] = {}  # tool → seconds, at least MIN_TIMEOUT_S
    app: AppOptions | None = None  # how Assay starts the app when it runs it
    fresh: Flag = False  # run every tool again, even where a stored run has the same inputs (no reuse)
    bandit: NoOptions | None = None
    ruff: NoOptions | None = None
    pylint: NoOptions | None = None
    mypy: NoOptions | None = None
    vulture: NoOptions | None = None
    radon: NoOptions | None = None
    detect_secrets: NoOptions | None = msgspec.field(default=None, name="detect-secrets")
    eslint: NoOptions | None = None
    semgrep: NoOptions | None = None
    pip_audit: NoOptions | None = msgspec.field(default=None, name="pip-audit")
    npm_audit: NoOptions | None = msgspec.field(default=None, name="npm-audit")
    reachability: NoOptions | None = None
    security_headers: NoOptions | None = msgspec.field(default=None, name="security-headers")
    cookies: NoOptions | None = None
    cors: NoOptions | None = None
    sensitive_paths: NoOptions | None = msgspec.field(default=None, name="sensitive-paths")
    endpoints: NoOptions | None = None
    surface: SurfaceOptions | None = None  # the accounts every active check acts as
    sqli: NoOptions | None = None
    ssti: NoOptions | None = None
    xss_reflected: NoOptions | None = msgspec.field(default=None, name="xss-reflected")
    xss_stored: NoOptions | None = msgspec.field(default=None, name="xss-stored")
    path_traversal: NoOptions | None = msgspec.field(default=None, name="path-traversal")
    command_injection: NoOptions | None = msgspec.field(default=None, name="command-injection")
    code_injection: NoOptions | None = msgspec.field(default=None, name="code-injection")
    open_redirect: NoOptions | None = msgspec.field(default=None, name="open-redirect")
    ssrf: NoOptions | None = None
    deserialization: NoOptions | None = None
    error_disclosure: NoOptions | None = msgspec.field(default=None, name="error-disclosure")
    brute_force: NoOptions | None = msgspec.field(default=None, name="brute-force")
    csrf: NoOptions | None = None
    idor: NoOptions | None = None
    wapiti: NoOptions | None = None
    load: LoadToolOptions | None = None
    requirements_review: ReviewOptions | None = msgspec.field(default=None, name="requirements-review")
    code_quality_review: ReviewOptions | None = msgspec.field(default=None, name="code-quality-review")
