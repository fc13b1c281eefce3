"""What names a task: its id, the app it analyses and the kind of analysis, as one typed `TaskRef`.

Every message and frame about a task carries a `TaskRef` under `task`, so the identity is copied as one value,
never field by field, and a consumer never needs an earlier message to know which app a task is about.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Literal

import msgspec

# Most urgent first: the orchestrator takes requests, and the analyzers hand out CPU, in this order.
Priority = Literal["urgent", "high", "normal", "low"]
PRIORITIES: tuple[Priority, ...] = ("urgent", "high", "normal", "low")
AnalysisType = Literal["security", "static", "dynamic", "performance", "ai", "comprehensive"]

TASK_ID_PATTERN = r"^task_[0-9a-f]{12}$"
MODEL_SLUG_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"
TASK_ID_RE = re.compile(TASK_ID_PATTERN)

TaskId = Annotated[str, msgspec.Meta(pattern=TASK_ID_PATTERN)]
ModelSlug = Annotated[str, msgspec.Meta(pattern=MODEL_SLUG_PATTERN)]
AppNumber = Annotated[int, msgspec.Meta(ge=1, le=99999)]


def new_task_id() -> str:
    return f"task_{secrets.token_hex(6)}"


class TaskRef(msgspec.Struct, frozen=True, kw_only=True):
    """One task: `id`, and the app (`model_slug`, `app_number`) that an `analysis_type` analysis is run on."""

    id: TaskId
    model_slug: ModelSlug
    app_number: AppNumber
    analysis_type: AnalysisType


class _TaskIdOnly(msgspec.Struct):
    id: str | None = None


class _NamesTask(msgspec.Struct):
    """Any message that may name a task: nested (`task.id`, requests and events) or flat (`task_id`)."""

    task: _TaskIdOnly | None = None
    task_id: str | None = None


class _NamesTaskRef(msgspec.Struct):
    task: TaskRef


def task_id_hint(data: bytes | None, subject: str = "") -> str | None:
    """The valid task id an otherwise unusable message names, in its subject or its JSON, if any (for dead
    letters and logs)."""
    for token in subject.split("."):
        if TASK_ID_RE.match(token):
            return token
    try:
        names = msgspec.json.decode(data or b"", type=_NamesTask)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    found = names.task.id if names.task is not None else names.task_id
    return found if found and TASK_ID_RE.match(found) else None


def task_ref_hint(data: bytes | None) -> TaskRef | None:
    """The complete, valid `task` of a message that is invalid elsewhere, if it has one."""
    try:
        return msgspec.json.decode(data or b"", type=_NamesTaskRef).task
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
