"""The HTTP bodies the gateway accepts and answers with (msgspec Structs, so Litestar validates and documents them).

Field types reuse the patterns and ranges of shared/wire/messages, so an HTTP request that passes here is a valid
AnalysisRequest; what is invalid is refused at this edge with a 422 naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from services.gateway.load_views import LoadView
from shared.results.findings import Origin, Proof
from shared.results.verdicts import Verdicts
from shared.store.tokens import TOKEN_ID_PATTERN, TOKEN_NAME_PATTERN, Scope
from shared.wire.messages import Priority, TaskStatus
from shared.wire.options import RequestOptions
from shared.wire.tasks import AnalysisType, AppNumber, ModelSlug, TaskId

ToolName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
# No spaces or control characters (a CR/LF would split the request line or a header of every probe).
TargetUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\x00-\x20\x7f]+$", max_length=2048)]
MIN_DEADLINE_S = 5.0  # below this not even the task's start is recorded before it ends
DeadlineSeconds = Annotated[float, msgspec.Meta(ge=MIN_DEADLINE_S, le=86400)]


class RunRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /api/analysis/run`. Unknown fields are refused, so a misspelt `tool` is not silently ignored."""

    model_slug: ModelSlug
    app_number: AppNumber
    analysis_type: AnalysisType
    tools: Annotated[list[ToolName], msgspec.Meta(max_length=64)] = []
    priority: Priority = "normal"
    target_urls: Annotated[list[TargetUrl], msgspec.Meta(max_length=32)] = []
    options: RequestOptions = msgspec.field(default_factory=RequestOptions)
    deadline_s: DeadlineSeconds | None = None  # None: the configured ASSAY_TASK_DEADLINE_S


class Links(msgspec.Struct, frozen=True, kw_only=True):
    self_: str = msgspec.field(name="self")
    events: str


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `POST /api/analysis/run` (202)."""

    task_id: TaskId
    status: TaskStatus
    model_slug: str
    app_number: int
    analysis_type: AnalysisType
    tools: list[str]
    priority: Priority
    trace_id: str | None
    links: Links


class DeadLetterHeading(msgspec.Struct, frozen=True, kw_only=True):
    """A dead letter as listed: where the message came from, how often it was delivered, why it was given up."""

    id: int  # its sequence in ASSAY_DLQ
    occurred_at: datetime
    task_id: str | None
    stream: str
    consumer: str
    subject: str
    deliveries: int
    reason: str


class DeadLetterDetail(DeadLetterHeading, frozen=True, kw_only=True):
    """One dead letter in full: with the original message (`payload`, as stored)."""

    payload: str


class DeadLetterPage(msgspec.Struct, frozen=True, kw_only=True):
    """Dead letters oldest first; `next_after` continues the list (None: it is complete)."""

    dead_letters: list[DeadLetterHeading]
    next_after: int | None


class Replayed(Accepted, frozen=True, kw_only=True):
    """Answer of `POST /api/dlq/{id}/replay` (202): the new task queued from a dead request."""

    replayed_from: int  # the dead letter's id
    original_task_id: str | None


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    percent: float
    message: str | None


class ServiceView(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    status: str
    error: str | None
    findings_count: int


class ToolView(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    tool: str
    status: str
    version: str | None
    command: list[str]
    exit_code: int | None
    duration_s: float
    files_analyzed: int
    findings_count: int
    reason: str | None
    # status `reused` (or some files reused): the task whose stored run stood in
    reused_from: str | None = None
    files_reused: int = 0


class TaskHeading(msgspec.Struct, frozen=True, kw_only=True):
    """What every view of a task starts with: which task, of which app, and where it stands."""

    task_id: str
    model_slug: str
    app_number: int
    analysis_type: str
    status: str
    status_reason: str | None
    priority: str


class TaskDetail(TaskHeading, frozen=True, kw_only=True):
    """Answer of `GET /api/tasks/{task_id}`: where the task stands and what each service and tool did."""

    requested_tools: list[str]
    progress: Progress
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    findings_count: int
    severity_breakdown: dict[str, int]
    findings_by_tool: dict[str, int]
    services: list[ServiceView]
    tools: list[ToolView]
    result_dir: str | None  # relative to the results root
    trace_id: str | None
    worker: str | None
    issues_count: int = 0  # distinct issues (issue groups) among the findings in the app's own code
    # Issues per severity: an issue is as severe as its worst finding (the app's own code only).
    issue_severity_breakdown: dict[str, int] = {}
    # Findings left out of the issue figures because their file is not the app's own code, by origin
    # (vendored, generated, minified, test): counted in findings_count, never in issues_count.
    findings_left_out: dict[str, int] = {}
    load: list[LoadView] = []  # the load test's figures per URL (performance analyses)
    result_path: str | None = None  # the result folder as an absolute path on the gateway's machine
    integrity_note: str | None = None  # what `assay fsck --repair` did to the result folder, or could not do
    batch_id: str | None = None  # the batch that queued it
    verdicts: Verdicts | None = None  # works, exploitable, flagged (None until the task has ended)
    waived_rules: list[str] = []  # what its batch asked of the app: counted in no verdict or figure


class TaskSummary(TaskHeading, frozen=True, kw_only=True):
    """One task of `GET /api/tasks`."""

    progress_percent: float
    findings_count: int
    created_at: datetime
    finished_at: datetime | None
    trace_id: str | None
    batch_id: str | None = None
    verdicts: Verdicts | None = None  # None until the task has ended


class TaskPage(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `GET /api/tasks`, newest first."""

    tasks: list[TaskSummary]
    total: int
    limit: int
    offset: int


class FindingView(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    tool: str
    rule_id: str
    severity: str
    category: str
    message: str
    path: str | None
    line: int | None
    column: int | None
    end_line: int | None
    cwe: str | None
    help_url: str | None
    fingerprint: str
    extra: dict[str, Any]
    issue_group: str = ""
    origin: Origin = "app"  # where the code it points at comes from: figures count `app` only
    proof: Proof | None = None  # the exchanges that confirmed it, when an attack did


class FindingPage(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `GET /api/tasks/{task_id}/findings`."""

    task_id: str
    findings: list[FindingView]
    total: int
    limit: int
    offset: int


class Cancelling(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `POST /api/tasks/{task_id}/cancel` (202)."""

    task_id: str
    status: str = "cancelling"


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `/readyz`: `ready` only when every dependency answers; the others say what is wrong."""

    status: str
    nats: str
    database: str


class FieldError(msgspec.Struct, frozen=True, kw_only=True):
    field: str | None  # the body field, query or path parameter at fault (None: the body as a whole)
    reason: str
    source: str | None  # body, query, path


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """Every refusal: `detail` says what is wrong; for a 422, `errors` names each field and why."""

    status_code: int
    detail: str
    errors: list[FieldError] = []


class TokenRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /api/tokens`."""

    name: Annotated[str, msgspec.Meta(pattern=TOKEN_NAME_PATTERN)]
    scope: Scope = "submit"


class TokenView(msgspec.Struct, frozen=True, kw_only=True):
    """A token as listed: never its secret."""

    token_id: Annotated[str, msgspec.Meta(pattern=TOKEN_ID_PATTERN)]
    name: str
    scope: Scope
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of `POST /api/tokens` (201): the only time `token` is shown."""

    token: str
    about: TokenView


class TokenList(msgspec.Struct, frozen=True, kw_only=True):
    tokens: list[TokenView]
