"""Which task a message given up on concerns; shared/publishing.py publishes it to ASSAY_DLQ."""

from __future__ import annotations

import re

import msgspec
from nats.aio.msg import Msg
from opentelemetry import trace

from shared.messages import TASK_ID_PATTERN

tracer = trace.get_tracer("services.persister")
_TASK_ID_IN_TEXT = re.compile(TASK_ID_PATTERN.strip("^$"))


class _HasTaskId(msgspec.Struct):
    task_id: str | None = None


def task_id_hint(msg: Msg) -> str | None:
    """The task a message concerns, read from its subject or, failing that, from whatever JSON it holds."""
    for part in msg.subject.split("."):
        if _TASK_ID_IN_TEXT.fullmatch(part):
            return part
    try:
        found = msgspec.json.decode(msg.data, type=_HasTaskId).task_id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return found if found and _TASK_ID_IN_TEXT.fullmatch(found) else None
