"""What both AI tools share: the API-key health check, request options, one call to the model, the tool run.

A review gathers the app's files (sources.py), asks its own question (requirements.py, quality.py), sends it
(client.py), decodes the answer (review.py) and lets the question judge it. Every way this can go wrong ends
in a ToolRun with the reason: no key → skipped; API error → failed; no answer in time → timeout; an answer
that is not a valid review → failed, with the answer kept in the raw output for inspection.

The AI tools do not take the analyzer's CPU budget: they wait on the network, not on a core. `command` records
the call honestly (`POST <endpoint> model=<model> …`); the raw output holds the exact request body (the whole
prompt, never the key) and the answer, so anyone can send the same request again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from services.analyzers.ai.client import ChatConfig, ChatError, ChatReply, complete, request_body
from services.analyzers.ai.review import Review, ReviewError, decode_review
from services.analyzers.ai.sources import Sources, collect_sources
from services.analyzers.base.job import Job
from services.analyzers.base.tool import SkipTool, ToolOutput
from shared.operations.config import Settings
from shared.operations.errors import InputError
from shared.results.findings import Finding, ToolRun, ToolStatus
from shared.wire.options import ReviewOptions
from shared.wire.protocol import ToolHealth

NO_KEY_REASON = "no API key: set ASSAY_AI_API_KEY"
LENGTH_HINT = " (the answer was cut at the model's length limit)"


class InvalidInput(InputError):
    """The app gives a review nothing valid to ask about (a malformed requirements.json): the tool fails."""


class ReviewOutcome(msgspec.Struct, kw_only=True):
    """What a question concluded from a review; `problem` set means the answer was unusable (tool failed)."""

    findings: list[Finding] = []
    metrics: dict[str, Any] = {}
    problem: str | None = None


@dataclass(frozen=True)
class Question:
    """The messages to send and how to judge the answer to them."""

    messages: list[dict[str, str]]
    judge: Callable[[Review], ReviewOutcome]


def app_label(job: Job) -> str:
    return f"{job.task.model_slug}/app{job.task.app_number}"


def _raw_output(config: ChatConfig, messages: list[dict[str, str]], reply: ChatReply) -> str:
    record = {
        "request": {"method": "POST", "url": config.endpoint, "body": request_body(config.model, messages)},
        "response": {
            "id": reply.response_id,
            "model": reply.model,
            "finish_reason": reply.finish_reason,
            "usage": reply.usage,
            "content": reply.content,
        },
    }
    return msgspec.json.encode(record).decode()


def _source_metrics(sources: Sources, messages: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "files": [source.path for source in sources.files],
        "truncated_files": [source.path for source in sources.files if source.truncated],
        "omitted_files": list(sources.omitted),
        "budget_chars": sources.budget_chars,
        "prompt_chars": sum(len(message["content"]) for message in messages),
    }


class ModelReview:
    """Base of the AI tools; subclasses set `name` and implement `question`."""

    name = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def health(self, settings: Settings) -> ToolHealth:
        """Available when a key is configured; the version is the configured model (no network call)."""
        del settings  # its own, given when it was made
        if not self.settings.ai_api_key:
            return ToolHealth(name=self.name, available=False, reason=NO_KEY_REASON)
        return ToolHealth(name=self.name, available=True, version=self.settings.ai_model)

    async def question(self, job: Job, sources: Sources) -> Question:
        raise NotImplementedError

    def _config(self, job: Job, options: ReviewOptions) -> ChatConfig:
        settings = job.settings
        if not settings.ai_api_key:  # health() already says unavailable; this keeps a direct run() honest too
            raise SkipTool(NO_KEY_REASON)
        return ChatConfig(
            base_url=settings.ai_base_url,
            api_key=settings.ai_api_key,
            model=options.model or settings.ai_model,
            timeout_s=min(settings.ai_timeout_s, job.tool_timeout_s(self.name)),
            referer=settings.gateway_url,
        )

    async def run(self, job: Job) -> ToolOutput:
        """Gather, ask, decode, judge; a failure is this tool's (failed or timeout), never the whole run's."""
        started = time.monotonic()

        def tool_run(
            status: ToolStatus,
            reason: str | None = None,
            *,
            version: str | None = None,
            command: list[str] | None = None,
            files_analyzed: int = 0,
            findings_count: int = 0,
        ) -> ToolRun:
            return ToolRun(
                tool=self.name,
                status=status,
                version=version,
                command=command or [],
                duration_s=round(time.monotonic() - started, 3),
                files_analyzed=files_analyzed,
                findings_count=findings_count,
                reason=reason,
            )

        try:
            options = msgspec.convert(job.tool_options(self.name), ReviewOptions)
        except msgspec.ValidationError as error:
            return ToolOutput(run=tool_run("failed", f"invalid options.{self.name}: {error}"))
        config = self._config(job, options)
        command = [
            "POST",
            config.endpoint,
            f"model={config.model}",
            "temperature=0",
            "response_format=json_object",
        ]
        if job.app_dir is None:
            raise SkipTool("the app's source folder is not here")
        sources = await collect_sources(job.app_dir, options.max_prompt_chars)
        if not sources.files:
            raise SkipTool("no source files to review")
        try:
            question = await self.question(job, sources)
        except InvalidInput as error:
            return ToolOutput(run=tool_run("failed", str(error), files_analyzed=len(sources.files)))
        asked = len(sources.files)
        timeout_s = job.tool_timeout_s(self.name)
        try:
            async with asyncio.timeout(timeout_s):
                reply = await complete(config, question.messages, task_id=job.task.id)
        except TimeoutError:
            reason = f"no answer from {config.endpoint} within {timeout_s:.1f} s"
            run = tool_run("timeout", reason, version=config.model, command=command, files_analyzed=asked)
            return ToolOutput(run=run)
        except ChatError as error:
            run = tool_run("failed", str(error), version=config.model, command=command, files_analyzed=asked)
            return ToolOutput(run=run)
        raw = _raw_output(config, question.messages, reply)
        metrics = {
            "model": reply.model,
            "response_id": reply.response_id,
            "attempts": reply.attempts,
            "usage": reply.usage,
            **_source_metrics(sources, question.messages),
        }
        try:
            outcome = question.judge(decode_review(reply.content))
        except ReviewError as error:
            cut = reply.finish_reason == "length"  # a common cause of broken JSON, worth saying
            outcome = ReviewOutcome(problem=f"{error}{LENGTH_HINT if cut else ''}")
        metrics |= outcome.metrics
        if outcome.problem is not None:
            run = tool_run(
                "failed", outcome.problem, version=reply.model, command=command, files_analyzed=asked
            )
            return ToolOutput(run=run, raw_output=raw, metrics=metrics)
        run = tool_run(
            "success",
            version=reply.model,
            command=command,
            files_analyzed=asked,
            findings_count=len(outcome.findings),
        )
        return ToolOutput(run=run, findings=outcome.findings, raw_output=raw, metrics=metrics)
