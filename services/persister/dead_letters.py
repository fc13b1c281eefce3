"""Which task a message given up on concerns; shared/publishing.py publishes it to ASSAY_DLQ."""

from __future__ import annotations

import re

from nats.aio.msg import Msg
from opentelemetry import trace

from shared.tasks import TASK_ID_PATTERN, task_id_hint

tracer = trace.get_tracer("services.persister")
_TASK_ID_IN_TEXT = re.compile(TASK_ID_PATTERN.strip("^$"))


def task_id_of(msg: Msg) -> str | None:
    """The task a message concerns, read from its subject or, failing that, from whatever JSON it holds."""
    for part in msg.subject.split("."):
        if _TASK_ID_IN_TEXT.fullmatch(part):
            return part
    return task_id_hint(msg.data)
