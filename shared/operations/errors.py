"""Assay's exceptions: one root, one branch per layer, so a caller catches what it means and nothing more.

`AssayError` is the root of every exception Assay raises on purpose. The branches below it say which layer
failed: input (an unsafe name or value from outside), messaging (NATS), the analyzer protocol (whose
subclasses are the wire's error codes, one class per code), tools (an analysis tool or model that could not do
its job) and storage (the persister's side). A bare `Exception` caught anywhere is a crash, never an expected
outcome.
"""

from __future__ import annotations

from typing import ClassVar, Literal

ErrorCode = Literal["bad_request", "unknown_app", "deadline", "cancelled", "internal"]


class AssayError(Exception):
    """The root of every exception Assay raises on purpose."""


class InputError(AssayError, ValueError):
    """A value from outside (a request, a file, a path) that Assay refuses; the message names it."""


class ConfigError(InputError):
    """A setting's value (an environment variable) that Assay refuses; the message names the variable."""


class MessagingError(AssayError, RuntimeError):
    """NATS could not be reached or would not take a message."""


class StorageError(AssayError):
    """The persister could not take a message or an artifact as it is."""


class ToolError(AssayError):
    """An analysis tool (or the model behind a review) could not do its job."""


class ProtocolError(AssayError):
    """A run of the analyzer protocol ended by an `error` frame; `code` is the frame's wire code."""

    code: ClassVar[ErrorCode] = "internal"


class BadRequest(ProtocolError):
    code = "bad_request"


class UnknownTool(BadRequest):
    """An analyze frame named a tool the analyzer does not have."""


class UnknownApp(ProtocolError):
    code = "unknown_app"
