"""Analyzer WebSocket protocol v1: the frames, one definition for the analyzer server and its client.

Every frame is a JSON text frame tagged by `type`. Each frame an analyzer sends about a run echoes the
request's `id`; a frame with another id is ignored by the client, never taken as the answer. `result` and `error`
are terminal: exactly one of them ends a run. `shutting_down` ends a run on this replica without an outcome: the
analyzer is stopping, and the client runs the request again elsewhere or later.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from shared.operations.errors import ErrorCode
from shared.results.findings import Finding, ToolRun
from shared.wire.tasks import Priority, TaskRef

PROTOCOL_VERSION = 1
HEARTBEAT_INTERVAL_S = 2.0  # analyzers beat at least this often; the contract promises at most every 5 s
MAX_FRAME_BYTES = (
    256 * 1024 * 1024
)  # results carry raw outputs and SARIF: what the orchestrator's client accepts
MAX_REQUEST_FRAME_BYTES = 1024 * 1024  # analyze/cancel/health frames are small: what an analyzer accepts


def analyzer_auth(token: str | None) -> dict[str, str]:
    """The handshake header that admits a client to an analyzer (ASSAY_ANALYZER_TOKEN)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


# `cancelled`: the run was cancelled midway; the result keeps the tools that had finished (the others `cancelled`)
ServiceStatus = Literal["success", "partial", "failed", "cancelled"]


class ServiceResult(msgspec.Struct, kw_only=True):
    """Everything one analyzer produced for one run."""

    service: str
    status: ServiceStatus
    tools: list[ToolRun] = []
    findings: list[Finding] = []
    sarif: dict[str, Any] = {}
    raw_outputs: dict[str, str] = {}
    metrics: dict[str, Any] = {}  # service-specific measurements (latency percentiles, header scores …)
    error: str | None = None  # why the service failed, when it did


# client → analyzer


class PythonEnvironment(msgspec.Struct, frozen=True, kw_only=True):
    """The app's prepared virtualenv for the static tools that resolve imports (pylint, mypy): `venv` is its name in
    the app runner's cache (never a path: the analyzer finds it under its own ASSAY_APP_WORK_DIR and refuses any
    other), or `reason` says why there is none (its preparation failed, no sandbox to prepare it in …)."""

    venv: str | None = None
    reason: str | None = None


class AnalyzeFrame(msgspec.Struct, tag="analyze", tag_field="type", kw_only=True):
    """Run `tools` (all when empty) of the analyzer on the task's app; `id` names the run."""

    id: str
    task: TaskRef
    tools: list[str] = []  # empty: every tool of the analyzer
    target_urls: list[str] = []
    options: dict[str, Any] = {}
    deadline_s: float = 900.0
    traceparent: str | None = None
    # BACKEND_PORT / FRONTEND_PORT of the app Assay started for this run: they stand in for its .env's (targets
    # policy, which target is the API). Only the orchestrator sends frames (the handshake's token).
    app_ports: dict[str, int] = {}
    # the request's: the analyzer's CPU budget serves the most urgent waiting tool first
    priority: Priority = "normal"
    # static only: the app's Python environment, when the orchestrator prepared one (or tried: the reason)
    python_env: PythonEnvironment | None = None


class CancelFrame(msgspec.Struct, tag="cancel", tag_field="type", kw_only=True):
    """Stop the run `id`; it ends with a `result` of status `cancelled` keeping the tools that had finished (an
    `error` frame of code `cancelled` when none had started)."""

    id: str


class HealthFrame(msgspec.Struct, tag="health", tag_field="type", kw_only=True):
    """Ask the analyzer for its health report."""

    id: str | None = None


ClientFrame = AnalyzeFrame | CancelFrame | HealthFrame


# analyzer → client


class ProgressFrame(msgspec.Struct, tag="progress", tag_field="type", kw_only=True):
    """A tool of run `id` started or ended; `percent` is the run's."""

    id: str
    tool: str | None = None
    stage: str = "running"  # started, finished, skipped, …
    percent: float = 0.0
    message: str = ""


class HeartbeatFrame(msgspec.Struct, tag="heartbeat", tag_field="type", kw_only=True):
    """Run `id` is alive; sent every 2 s while it works."""

    id: str


class ResultFrame(msgspec.Struct, tag="result", tag_field="type", kw_only=True):
    """Run `id` ended with the analyzer's result (terminal)."""

    id: str
    result: ServiceResult


class ErrorFrame(msgspec.Struct, tag="error", tag_field="type", kw_only=True):
    """Run `id` ended without a result (terminal); `code` says why."""

    id: str
    code: ErrorCode  # one subclass of shared.operations.errors.ProtocolError each
    message: str


class ShuttingDownFrame(msgspec.Struct, tag="shutting_down", tag_field="type", kw_only=True):
    """The analyzer is stopping and will not end run `id` (refused on arrival, or still running past its grace
    period, then stopped): not an outcome, the client runs the same request again on another replica or later."""

    id: str
    message: str


class ToolHealth(msgspec.Struct, kw_only=True):
    """Whether one tool can run here, with its version or the reason it cannot."""

    name: str
    available: bool
    version: str | None = None
    reason: str | None = None


class HealthReport(msgspec.Struct, tag="health", tag_field="type", kw_only=True):
    """The analyzer's answer to `health`: its tools and how many runs it has."""

    id: str | None = None
    service: str
    protocol: int = PROTOCOL_VERSION
    tools: list[ToolHealth] = []
    active_runs: int = 0
    draining: bool = False  # asked to stop: finishing its runs, refusing new ones (not a replica to choose)


AnalyzerFrame = ProgressFrame | HeartbeatFrame | ResultFrame | ErrorFrame | ShuttingDownFrame | HealthReport

_client_decoder = msgspec.json.Decoder(ClientFrame)
_analyzer_decoder = msgspec.json.Decoder(AnalyzerFrame)


def decode_client_frame(data: str | bytes) -> ClientFrame:
    """Decode a frame sent to an analyzer; raises msgspec.ValidationError/DecodeError with the reason."""
    return _client_decoder.decode(data)


def decode_analyzer_frame(data: str | bytes) -> AnalyzerFrame:
    """Decode a frame sent by an analyzer; raises msgspec.ValidationError/DecodeError with the reason."""
    return _analyzer_decoder.decode(data)


def encode_frame(frame: msgspec.Struct) -> str:
    """Frames go out as JSON text frames."""
    return msgspec.json.encode(frame).decode()
