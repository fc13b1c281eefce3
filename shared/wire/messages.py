"""Messages on NATS: one definition each, imported by producer and consumer.

Every message carries `schema_version`, `event_id` (also sent as `Nats-Msg-Id`) and `occurred_at`; a request or an
event names its task as one `task` object (`shared.wire.tasks.TaskRef`), a cancel request or a dead letter by `task_id`.
Events on ASSAY_EVENTS are one tagged union (`kind`), decoded once at the consumer's edge.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args, overload

import msgspec

from shared.results.waivers import MAX_WAIVERS, Waiver
from shared.wire.app_run import AppRun
from shared.wire.protocol import ServiceResult, ServiceStatus
from shared.wire.tasks import PRIORITIES as PRIORITIES  # re-exported: the messages name the priorities
from shared.wire.tasks import Priority as Priority
from shared.wire.tasks import TaskId, TaskRef

SCHEMA_VERSION = 1

TaskStatus = Literal["pending", "running", "completed", "partial", "failed", "cancelled"]
CompletedStatus = Literal["completed", "partial"]  # what a `completed` event says of its task

BATCH_ID_PATTERN = r"^batch_[0-9a-f]{12}$"
BatchId = Annotated[str, msgspec.Meta(pattern=BATCH_ID_PATTERN)]


def new_batch_id() -> str:
    return f"batch_{secrets.token_hex(6)}"


def new_event_id() -> str:
    return secrets.token_hex(16)


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """`value` in UTC, as Assay stores every time; one without a zone (a message's that named none) is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """Fields every message carries."""

    schema_version: int = SCHEMA_VERSION
    event_id: str = msgspec.field(default_factory=new_event_id)
    occurred_at: datetime = msgspec.field(default_factory=utcnow)


class AnalysisRequest(Envelope, frozen=True, kw_only=True):
    """Published by the gateway on `assay.requests.<priority>`."""

    task: TaskRef
    tools: list[str] = []  # empty: every tool of the services the type names
    priority: Priority = "normal"
    target_urls: list[str] = []
    options: dict[str, Any] = {}
    deadline_s: float = 900.0
    batch_id: BatchId | None = None  # the batch that queued it
    # Non-blank source lines of the app when it was accepted (what reports divide by, per thousand lines).
    source_lines: int | None = None
    # What the task's batch asked of the app (shared/results/waivers.py): counted in no verdict or figure.
    waived_rules: Annotated[list[Waiver], msgspec.Meta(max_length=MAX_WAIVERS)] = []


class CancelRequest(Envelope, frozen=True, kw_only=True):
    """Core NATS on `assay.control.cancel.<task_id>`; also kept in the tasks bucket for runs not yet started."""

    task_id: TaskId
    reason: str = "cancelled by request"


# Events: every event names the task it belongs to in full, so a consumer never needs an earlier one to act.


class TaskEvent(Envelope, frozen=True, kw_only=True, tag_field="kind"):
    """An event on `assay.events.<task_id>.<kind>`, tagged by `kind`; it names its task in full."""

    task: TaskRef


class TaskStarted(TaskEvent, frozen=True, kw_only=True, tag="started"):
    """An orchestrator took the task: the analyzers (`services`) and tools it runs."""

    services: list[str]
    tools: list[str] = []
    priority: Priority = "normal"
    worker: str = ""  # which orchestrator replica runs it


class TaskProgress(TaskEvent, frozen=True, kw_only=True, tag="progress"):
    """How far the task is (`percent` is the task's), at least every 30 s while it runs."""

    service: str
    tool: str | None = None
    stage: str = "running"
    percent: float = 0.0
    message: str = ""


class ArtifactRef(msgspec.Struct, frozen=True, kw_only=True):
    """A payload too large for a message, kept in the JetStream object store."""

    bucket: str
    name: str
    size: int
    sha256: str


class ServiceFinished(TaskEvent, frozen=True, kw_only=True, tag="service"):
    """One analyzer's outcome; `result` inline, or in the object store when it is large (`artifact`)."""

    service: str
    status: ServiceStatus
    result: ServiceResult | None = None
    artifact: ArtifactRef | None = None
    error: str | None = None


class TaskCompleted(TaskEvent, frozen=True, kw_only=True, tag="completed"):
    """The task ended with every analyzer's outcome: `completed`, or `partial` when some failed."""

    status: CompletedStatus
    services: list[str]  # the services whose `service` events belong to this task
    reason: str | None = None  # for `partial`: which services failed and why
    app: AppRun | None = None  # the run of the app, when Assay started it (written as services/app.json)


class TaskFailed(TaskEvent, frozen=True, kw_only=True, tag="failed"):
    """The task ended without a usable outcome; `reason` says why."""

    reason: str
    services: list[str] = []
    app: AppRun | None = None


class TaskCancelled(TaskEvent, frozen=True, kw_only=True, tag="cancelled"):
    """The task was cancelled on request; its analyzers were told to stop."""

    reason: str
    services: list[str] = []
    app: AppRun | None = None


Event = TaskStarted | TaskProgress | ServiceFinished | TaskCompleted | TaskFailed | TaskCancelled
# What ends a task: nothing is written for it after.
TerminalEvent = TaskCompleted | TaskFailed | TaskCancelled


def event_kind(event: TaskEvent | type[TaskEvent]) -> str:
    """An event's `kind` (of an event or its class): its tag on the wire, and the last token of its subject."""
    kind = event if isinstance(event, type) else type(event)
    return str(kind.__struct_config__.tag)


def terminal_status(event: TerminalEvent) -> str:
    """The status a terminal event leaves its task in: its kind, but `partial` for a `completed` that says so."""
    return event.status if isinstance(event, TaskCompleted) else event_kind(event)


TERMINAL_KINDS: tuple[str, ...] = tuple(event_kind(kind) for kind in get_args(TerminalEvent))
TERMINAL_STATUSES: frozenset[str] = frozenset((*TERMINAL_KINDS, *get_args(CompletedStatus)))


class DeadLetter(Envelope, frozen=True, kw_only=True):
    """What goes to ASSAY_DLQ: the original message, where it came from and why it was given up."""

    task_id: str | None = None  # when the message names a valid one
    stream: str
    subject: str
    consumer: str
    deliveries: int
    reason: str
    payload: str  # the original bytes, decoded as UTF-8 with replacement


_event_decoder = msgspec.json.Decoder(Event)
_request_decoder = msgspec.json.Decoder(AnalysisRequest)
_cancel_decoder = msgspec.json.Decoder(CancelRequest)
_dead_letter_decoder = msgspec.json.Decoder(DeadLetter)


def encode(message: msgspec.Struct) -> bytes:
    return msgspec.json.encode(message)


def decode_event(data: bytes) -> Event:
    """Decode an event; raises msgspec.DecodeError/ValidationError saying what is wrong."""
    return _event_decoder.decode(data)


def decode_request(data: bytes) -> AnalysisRequest:
    return _request_decoder.decode(data)


def decode_cancel(data: bytes) -> CancelRequest:
    return _cancel_decoder.decode(data)


def decode_dead_letter(data: bytes) -> DeadLetter:
    return _dead_letter_decoder.decode(data)
