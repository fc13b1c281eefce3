"""An OpenAI-compatible chat-completions client (OpenRouter by default): bounded retries, clear errors.

One call is `POST {base_url}/chat/completions` with the bearer key, temperature 0 and JSON-object answers.
429 and 5xx answers and transport errors are retried with exponential backoff (or the server's `Retry-After`,
capped) up to `max_attempts`; every other non-200 answer fails at once with a message that says what to fix.
The provider's answer is decoded with msgspec at this edge, so nothing above handles raw dicts.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlparse

import httpx
import msgspec
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared.operations.errors import ToolError
from shared.telemetry.tracing import TASK_ID_ATTRIBUTE

tracer = trace.get_tracer("assay.analyzer.ai")

# Retried: these and every 5xx (OpenRouter relays 502/503/524 from providers).
RETRYABLE_STATUSES = frozenset({408, 425, 429})
# A server asking for a longer pause gets it capped; the tool's timeout bounds the whole call anyway.
MAX_RETRY_AFTER_S = 30.0
APP_TITLE = "Assay"  # OpenRouter shows X-Title (and HTTP-Referer) as the calling application

# What a non-retryable status most likely means, so the reason tells the operator what to change.
_HINTS = {
    400: "the API rejected the request",
    401: "authentication failed: check ASSAY_AI_API_KEY",
    402: "payment required: the account behind ASSAY_AI_API_KEY has no credit",
    403: "forbidden: the key may not use this model",
    404: "not found: check ASSAY_AI_BASE_URL and ASSAY_AI_MODEL",
    413: "the prompt is too large for this model: lower options.<tool>.max_prompt_chars",
    422: "the API could not process the request",
}


class ChatConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Where and how to ask. `referer` is sent as HTTP-Referer (OpenRouter's app attribution)."""

    base_url: str
    api_key: str
    model: str
    timeout_s: float  # one HTTP exchange; the caller bounds the whole call (retries included) on top
    referer: str = ""
    max_attempts: int = 3
    backoff_s: float = 1.0  # first pause between attempts; doubles each time

    @property
    def endpoint(self) -> str:
        return f"{self.base_url.rstrip('/')}/chat/completions"


class ChatReply(msgspec.Struct, frozen=True, kw_only=True):
    """The assistant's text and what the server said about it."""

    content: str
    model: str  # the model the server reports having used (falls back to the one asked for)
    response_id: str | None
    finish_reason: str | None
    usage: dict[str, Any]
    attempts: int
    duration_s: float


class ChatError(ToolError):
    """The API could not give an answer; the message says why (and what to check)."""


class _Message(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    message: _Message
    finish_reason: str | None = None


class _Completion(msgspec.Struct):
    choices: list[_Choice]
    model: str | None = None
    id: str | None = None
    usage: dict[str, Any] | None = None


class _ErrorBody(msgspec.Struct):
    error: dict[str, Any] | str


_completion_decoder = msgspec.json.Decoder(_Completion)
_error_decoder = msgspec.json.Decoder(_ErrorBody)


def request_body(model: str, messages: list[dict[str, str]]) -> dict[str, Any]:
    """The JSON body of one call: deterministic sampling, JSON-object answers."""
    return {
        "model": model,
        "messages": messages,
        "temperature": 0,
        "response_format": {"type": "json_object"},
    }


def _headers(config: ChatConfig) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {config.api_key}",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-Title": APP_TITLE,
    }
    if config.referer:
        headers["HTTP-Referer"] = config.referer
    return headers


def _server_message(response: httpx.Response) -> str:
    """The provider's own error message when it sent one (OpenAI/OpenRouter shape), else the body's start."""
    try:
        body = _error_decoder.decode(response.content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return response.text.strip()[:300]
    if isinstance(body.error, dict):
        return str(body.error.get("message") or body.error)[:300]
    return body.error[:300]


def _describe(response: httpx.Response, config: ChatConfig) -> str:
    hint = _HINTS.get(response.status_code, "unexpected answer")
    detail = _server_message(response)
    where = f"{config.endpoint}, model {config.model}"
    return f"HTTP {response.status_code} from {where}: {hint}" + (f" ({detail})" if detail else "")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        return None  # absent, or an HTTP date: fall back to our own backoff


def _reply(response: httpx.Response, config: ChatConfig) -> ChatReply:
    """Decode a 200 answer; OpenRouter reports some failures as 200 with an `error` body."""
    try:
        completion = _completion_decoder.decode(response.content)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        detail = _server_message(response)
        raise ChatError(f"unexpected answer from {config.endpoint}: {error} ({detail})") from error
    if not completion.choices or completion.choices[0].message.content is None:
        raise ChatError(f"{config.endpoint} answered without any message content (model {config.model})")
    choice = completion.choices[0]
    return ChatReply(
        content=choice.message.content or "",
        model=completion.model or config.model,
        response_id=completion.id,
        finish_reason=choice.finish_reason,
        usage=completion.usage or {},
        attempts=1,  # the caller fills in the count and the time across attempts
        duration_s=0.0,
    )


class _Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """How one attempt went: a reply, or why not and whether (and when) to try again."""

    reply: ChatReply | None = None
    reason: str = ""
    retry_after_s: float | None = None  # the server's own Retry-After, when it sent one


async def _attempt(
    client: httpx.AsyncClient, config: ChatConfig, payload: bytes, span: trace.Span
) -> _Attempt:
    """One POST. Transient failures come back as an _Attempt to retry; the rest raise ChatError."""
    try:
        response = await client.post(config.endpoint, content=payload, headers=_headers(config))
    except httpx.TransportError as error:
        return _Attempt(reason=f"cannot reach {config.endpoint}: {type(error).__name__}: {error}")
    span.set_attribute("http.response.status_code", response.status_code)
    if response.status_code == 200:
        return _Attempt(reply=_reply(response, config))
    reason = _describe(response, config)
    if response.status_code not in RETRYABLE_STATUSES and response.status_code < 500:
        raise ChatError(reason)
    return _Attempt(reason=reason, retry_after_s=_retry_after(response))


def _record_reply(span: trace.Span, reply: ChatReply) -> None:
    span.set_attribute("gen_ai.response.model", reply.model)
    span.set_attribute("assay.ai.attempts", reply.attempts)
    for key, name in (("prompt_tokens", "input_tokens"), ("completion_tokens", "output_tokens")):
        if isinstance(reply.usage.get(key), int):
            span.set_attribute(f"gen_ai.usage.{name}", reply.usage[key])


async def complete(
    config: ChatConfig,
    messages: list[dict[str, str]],
    *,
    task_id: str | None = None,
) -> ChatReply:
    """Ask once (retrying transient failures); raises ChatError with the reason when no answer comes."""
    payload = msgspec.json.encode(request_body(config.model, messages))
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": config.model,
        "gen_ai.request.temperature": 0.0,
        "server.address": urlparse(config.base_url).hostname or "",
        "http.request.method": "POST",
    }
    if task_id:
        attributes[TASK_ID_ATTRIBUTE] = task_id
    attempts = max(1, config.max_attempts)
    started = time.monotonic()
    with tracer.start_as_current_span(
        f"chat {config.model}", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        async with httpx.AsyncClient(timeout=config.timeout_s) as client:
            outcome = _Attempt()
            for number in range(1, attempts + 1):
                outcome = await _attempt(client, config, payload, span)
                if outcome.reply is not None:
                    reply = msgspec.structs.replace(
                        outcome.reply, attempts=number, duration_s=round(time.monotonic() - started, 3)
                    )
                    _record_reply(span, reply)
                    return reply
                if number < attempts:
                    # The server's Retry-After wins when it gave one; otherwise back off exponentially.
                    backoff = config.backoff_s * 2 ** (number - 1)
                    await asyncio.sleep(backoff if outcome.retry_after_s is None else outcome.retry_after_s)
            span.set_status(Status(StatusCode.ERROR, outcome.reason))
            raise ChatError(f"{outcome.reason} (gave up after {attempts} attempts)")
