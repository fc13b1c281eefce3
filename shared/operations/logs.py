"""Structured logs: one JSON object per line, carrying `task_id`, the current `trace_id` and `span_id`, and the
name of the service that wrote it (an `extra` cannot change it: name an analyzer as `analyzer`)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import msgspec
from opentelemetry import trace

from shared.operations.redact import redacted

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# msgspec: a tenth of the CPU of json.dumps per line; a value JSON has no form for is written as its str().
_encoder = msgspec.json.Encoder(enc_hook=str)


class JsonFormatter(logging.Formatter):
    """Renders a record as JSON; `extra={...}` fields (task_id, tool …) become top-level keys."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        entry.update({key: value for key, value in record.__dict__.items() if key not in _STANDARD})
        entry["service"] = self._service
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return redacted(
            _encoder.encode(entry).decode()
        )  # no URL's password in any line (shared/operations/redact.py)


def setup_logging(service: str, level: str = "INFO") -> None:
    """Send every log record of the process to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("websockets", "nats", "httpx", "aiosqlite", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
