"""The CLI's HTTP client for the gateway (synchronous: the CLI has no event loop of its own)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any, Self

import httpx
from opentelemetry import trace

from shared.operations.errors import AssayError
from shared.telemetry.tracing import inject_headers


class GatewayError(AssayError):
    """The gateway refused the request (`status` is its HTTP code) or could not be reached (`status` is None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _reason(response: httpx.Response) -> str:
    """The gateway's explanation: `detail` plus each field error, else the raw body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)
    return str(body.get("detail") or response.reason_phrase)


def trace_headers(starts_task: bool = False) -> dict[str, str]:
    """The `traceparent` a call carries. Under `assay --trace` the command's own span; otherwise a parent marked
    not sampled, so that the CLI's own calls (polling, lookups) leave no trace in the gateway. A call that starts a
    task (`starts_task`) sends none then: the task's trace begins at the gateway."""
    if trace.get_current_span().get_span_context().is_valid:
        return inject_headers()
    if starts_task:
        return {}
    return {"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"}


class GatewayClient:
    """Calls to one gateway; every method raises GatewayError with the gateway's reason on failure."""

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, headers=headers)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()

    def _request(self, method: str, path: str, starts_task: bool = False, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, headers=trace_headers(starts_task), **kwargs)
        except httpx.HTTPError as error:
            raise GatewayError(f"gateway not reachable at {self.base_url}: {error}") from error
        if response.status_code == 401:
            hint = "set ASSAY_TOKEN, or run `assay up` on this machine, which saves a token for the CLI"
            raise GatewayError(f"{_reason(response)} ({hint})", 401)
        if response.status_code >= 400:
            raise GatewayError(_reason(response), response.status_code)
        return response

    def _call(self, method: str, path: str, starts_task: bool = False, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._request(method, path, starts_task, **kwargs).json()
        return body

    def run_analysis(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/api/analysis/run", starts_task=True, json=body)

    def task(self, task_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/tasks/{task_id}")

    def events(self, task_id: str, read_timeout_s: float) -> Iterator[dict[str, Any] | None]:
        """The task's events (SSE) as they arrive, each its JSON, None for a keep-alive; ends after the terminal
        one. GatewayError when the stream cannot be opened, breaks, or is silent for `read_timeout_s`."""
        timeout = httpx.Timeout(self._http.timeout.connect, read=read_timeout_s)
        path = f"/api/tasks/{task_id}/events"
        try:
            with self._http.stream("GET", path, headers=trace_headers(), timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise GatewayError(_reason(response), response.status_code)
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        yield json.loads(line[len("data:") :])
                    elif line.startswith(":"):
                        yield None
        except httpx.HTTPError as error:
            raise GatewayError(f"the event stream of {task_id} broke: {error}") from error

    def trace(self, task_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/tasks/{task_id}/trace")

    def cancel(self, task_id: str) -> dict[str, Any]:
        return self._call("POST", f"/api/tasks/{task_id}/cancel")

    def tasks(self, filters: dict[str, Any]) -> dict[str, Any]:
        """One page of tasks, newest first; `filters` are the query parameters (None values left out)."""
        return self._call("GET", "/api/tasks", params={k: v for k, v in filters.items() if v is not None})

    def findings(self, task_id: str, filters: dict[str, Any]) -> dict[str, Any]:
        return self._call(
            "GET",
            f"/api/tasks/{task_id}/findings",
            params={k: v for k, v in filters.items() if v is not None},
        )

    def issues(self, task_id: str, filters: dict[str, Any]) -> dict[str, Any]:
        return self._call(
            "GET", f"/api/tasks/{task_id}/issues", params={k: v for k, v in filters.items() if v is not None}
        )

    def create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        # Each task of the batch starts its own trace at the gateway, linked to this request's.
        return self._call("POST", "/api/batches", starts_task=True, json=body)

    def batches(self, limit: int, offset: int = 0) -> dict[str, Any]:
        """One page of batches, newest first."""
        return self._call("GET", "/api/batches", params={"limit": limit, "offset": offset})

    def batch_findings(self, batch_id: str, export_format: str) -> Iterator[bytes]:
        """Every finding of the batch as the gateway streams it (JSON lines or CSV), chunk by chunk."""
        path = f"/api/batches/{batch_id}/findings"
        timeout = httpx.Timeout(self._http.timeout.connect, read=120.0)
        params = {"format": export_format}
        try:
            with self._http.stream(
                "GET", path, params=params, headers=trace_headers(), timeout=timeout
            ) as answer:
                if answer.status_code >= 400:
                    answer.read()
                    raise GatewayError(_reason(answer), answer.status_code)
                yield from answer.iter_bytes()
        except httpx.HTTPError as error:
            raise GatewayError(f"the findings of {batch_id} could not be read to the end: {error}") from error

    def batch(self, batch_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/batches/{batch_id}")

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        return self._call("POST", f"/api/batches/{batch_id}/cancel")

    def report(self, path: str, params: dict[str, str | float]) -> str:
        """A report route's answer as the gateway renders it (JSON, CSV or Markdown text)."""
        return self._request("GET", path, params=params).text

    def diff(self, task_id: str, against: str | None = None) -> dict[str, Any]:
        """New, fixed and unchanged findings of the task against `against` (default: its previous run)."""
        return self._call("GET", f"/api/tasks/{task_id}/diff", params={"against": against} if against else {})

    def create_token(self, name: str, scope: str) -> dict[str, Any]:
        return self._call("POST", "/api/tokens", json={"name": name, "scope": scope})

    def tokens(self) -> dict[str, Any]:
        return self._call("GET", "/api/tokens")

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        return self._call("POST", f"/api/tokens/{token_id}/revoke")

    def dead_letters(self, after: int, limit: int) -> dict[str, Any]:
        return self._call("GET", "/api/dlq", params={"after": after, "limit": limit})

    def dead_letter(self, letter_id: int) -> dict[str, Any]:
        return self._call("GET", f"/api/dlq/{letter_id}")

    def replay_dead_letter(self, letter_id: int) -> dict[str, Any]:
        return self._call("POST", f"/api/dlq/{letter_id}/replay", starts_task=True)
