"""The SQL tables (SQLAlchemy 2 typed models). Only the persister writes the tasks and what they found; the gateway
reads them, and writes only `api_tokens` (last use) and `idempotency_keys`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A time stamp that always comes back with a time zone: SQLite drops it, so a naive value read back is UTC
    (every writer stores UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON, datetime: UtcDateTime()}


class Task(Base):
    """One analysis request and where it stands."""

    __tablename__ = "tasks"

    task_id: Mapped[str] = mapped_column(String(17), primary_key=True)
    model_slug: Mapped[str] = mapped_column(String(128), index=True)
    app_number: Mapped[int] = mapped_column(Integer)
    analysis_type: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    tools: Mapped[list[str]] = mapped_column(default=list)
    services: Mapped[list[str]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    progress_percent: Mapped[float] = mapped_column(Float, default=0.0)
    progress_message: Mapped[str | None] = mapped_column(Text)
    findings_count: Mapped[int] = mapped_column(Integer, default=0)
    severity_breakdown: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result_dir: Mapped[str | None] = mapped_column(Text)  # relative to the results root
    trace_id: Mapped[str | None] = mapped_column(String(32))
    worker: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    batch_id: Mapped[str | None] = mapped_column(String(18), index=True)  # set when a batch queued the task
    source_lines: Mapped[int | None] = mapped_column(
        Integer
    )  # the app's non-blank source lines when accepted
    # What `assay fsck --repair` did to the task's folder, or why it could not (None: never repaired).
    integrity_note: Mapped[str | None] = mapped_column(Text)
    # shared.results.verdicts.Verdicts: does the app work, can it be broken, is it flagged (None: not judged yet)
    verdicts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # shared.results.waivers: rules the task's batch asked of the app, which count in no verdict or figure (None: none)
    waived_rules: Mapped[list[str] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_tasks_app", "model_slug", "app_number"),)


class ServiceRun(Base):
    """One analyzer's outcome within a task."""

    __tablename__ = "service_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.task_id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    findings_count: Mapped[int] = mapped_column(Integer, default=0)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    event_id: Mapped[str] = mapped_column(String(64))
    # shared/results/finding_summary: what the model comparison reads; None for runs recorded before it existed
    finding_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    recorded_at: Mapped[datetime]
    # The service's whole outcome (services/persister/staging.py) from its `service` event until the task's result
    # folder holds it; NULL once the task has ended.
    staged_result: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (UniqueConstraint("task_id", "service", name="uq_service_runs_task_service"),)


class ToolRunRow(Base):
    """What one tool did within a task: status, version, the exact command, exit code, counts."""

    __tablename__ = "tool_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.task_id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(32))
    tool: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[str | None] = mapped_column(String(128))
    command: Mapped[list[str]] = mapped_column(default=list)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    files_analyzed: Mapped[int] = mapped_column(Integer, default=0)
    findings_count: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(Text)
    reused_from: Mapped[str | None] = mapped_column(String(32))  # the task whose stored run this one reused
    files_reused: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (UniqueConstraint("task_id", "service", "tool", name="uq_tool_runs_task_service_tool"),)


def _own_issue_group(context: Any) -> str:
    return str(context.get_current_parameters()["fingerprint"])[:32]


class FindingRow(Base):
    """One normalized finding; every finding a tool reported is kept, none cut off."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.task_id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(32))
    tool: Mapped[str] = mapped_column(String(64))
    rule_id: Mapped[str] = mapped_column(String(256))
    severity: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(Text)
    line: Mapped[int | None] = mapped_column(Integer)
    column: Mapped[int | None] = mapped_column(Integer)
    end_line: Mapped[int | None] = mapped_column(Integer)
    cwe: Mapped[str | None] = mapped_column(String(32))
    help_url: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # shared/results/issue_groups; a row written without one (or before groups existed) is an issue of its own.
    issue_group: Mapped[str] = mapped_column(String(32), default=_own_issue_group)
    origin: Mapped[str] = mapped_column(String(16), default="app")  # shared.results.findings.Origin
    proof: Mapped[dict[str, Any] | None] = mapped_column(
        JSON
    )  # shared.results.findings.Proof, when confirmed

    __table_args__ = (
        Index("ix_findings_task_tool", "task_id", "tool"),
        Index("ix_findings_fingerprint", "fingerprint"),
        Index("ix_findings_task_issue_group", "task_id", "issue_group"),
    )


class ProcessedEvent(Base):
    """Event ids already applied: makes the persister idempotent beyond JetStream's 2-minute de-dup window."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(17), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    processed_at: Mapped[datetime]


class ApiToken(Base):
    """An API token the gateway accepts: only a salted hash of its secret is kept; the token is shown once."""

    __tablename__ = "api_tokens"

    token_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(8))  # read < submit < admin
    salt: Mapped[str] = mapped_column(String(32))  # hex
    secret_hash: Mapped[str] = mapped_column(String(64))  # hex of PBKDF2-SHA256(secret, salt)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    """An `Idempotency-Key` a token sent to an accepting route: the hash of its request and, once answered, the
    answer (status, JSON body, Location), replayed to every retry until the key expires."""

    __tablename__ = "idempotency_keys"

    token_id: Mapped[str] = mapped_column(
        String(16), primary_key=True
    )  # "" when the gateway runs without auth
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))  # of the route and the decoded body
    status_code: Mapped[int | None] = mapped_column(Integer)  # None while the first request is being handled
    response: Mapped[bytes | None] = mapped_column(LargeBinary)
    location: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    answered_at: Mapped[datetime | None]
    # While unanswered: the lease its request renews as it runs; past it, its gateway died (None: before 0015).
    held_until: Mapped[datetime | None]
    # While unanswered: the attempt (claim or takeover) that holds it, a random id (None: before 0015).
    holder: Mapped[str | None] = mapped_column(String(32))
