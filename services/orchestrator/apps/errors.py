"""Why an app could not be run."""

from __future__ import annotations

from shared.operations.errors import AssayError


class AppError(AssayError):
    """An app could not be prepared, started or kept running; the message says why and what to do."""


class SandboxUnavailable(AppError):
    """Apps cannot be run: no bubblewrap, and the unsandboxed mode was not chosen."""


class AppNotStarted(AppError):
    """Preparing or starting the app failed; str() is the task's reason (`app did not start: …`)."""


class PrepareFailed(AppNotStarted):
    """A preparation step failed: the reason, the whole log so far and the requirement pip or npm named."""

    def __init__(self, reason: str, log: str, failing: str | None) -> None:
        super().__init__(reason)
        self.log = log
        self.failing = failing
