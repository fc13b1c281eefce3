"""Running the chosen tools of one job concurrently and folding their outputs into one ServiceResult."""

from __future__ import annotations

import asyncio
import logging
import time

from opentelemetry import trace

from services.analyzers.base.job import Job
from services.analyzers.base.tool import SkipTool, Tool, ToolOutput
from shared.operations.errors import AssayError
from shared.results.findings import COMPLETED_STATUSES, ToolRun
from shared.results.sarif import app_root_of, sarif_for
from shared.telemetry.metrics import record_tool_run
from shared.telemetry.tracing import TASK_ID_ATTRIBUTE
from shared.wire.protocol import ServiceResult, ServiceStatus

log = logging.getLogger(__name__)
tracer = trace.get_tracer("assay.analyzer")


async def run_tool(tool: Tool, job: Job) -> ToolOutput:
    """Run one tool in its own span; a missing tool is `skipped`, a crash is `failed`, never the whole run."""
    with tracer.start_as_current_span(
        f"tool {tool.name}", attributes={TASK_ID_ATTRIBUTE: job.task.id}
    ) as span:
        await job.report(tool.name, "started", f"{tool.name} started")
        started = time.monotonic()
        health = await tool.health(job.settings)
        if not health.available:
            output = ToolOutput(run=ToolRun(tool=tool.name, status="skipped", reason=health.reason))
        else:
            try:
                output = await tool.run(job)
            except SkipTool as skip:
                output = ToolOutput(
                    run=ToolRun(tool=tool.name, status="skipped", version=health.version, reason=str(skip))
                )
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a tool's bug must not sink its siblings
                log.exception("tool %s crashed", tool.name, extra={"task_id": job.task.id, "tool": tool.name})
                output = ToolOutput(
                    run=ToolRun(
                        tool=tool.name,
                        status="failed",
                        version=health.version,
                        duration_s=round(time.monotonic() - started, 3),
                        reason=f"{type(error).__name__}: {error}",
                    )
                )
        record_tool_run(tool.name, output.run.status, time.monotonic() - started)
        span.set_attribute("assay.tool.status", output.run.status)
        span.set_attribute("assay.tool.findings", len(output.findings))
        await job.report(tool.name, output.run.status, f"{tool.name} {output.run.status}")
        return output


def service_status(runs: list[ToolRun]) -> ServiceStatus:
    """success when nothing failed, partial when some tools failed or covered only part of their work, failed when
    every tool that ran failed (a reused run counts as one that ran to the end)."""
    ran = [run for run in runs if run.status != "skipped"]
    bad = [run for run in ran if run.status not in COMPLETED_STATUSES]
    if not bad:
        return "success"
    broken = [run for run in bad if run.status != "partial"]
    return "failed" if len(broken) == len(ran) else "partial"


class ToolsStopped(AssayError):
    """The run was cancelled; `result` keeps what the tools that had finished produced (status `cancelled`)."""

    def __init__(self, result: ServiceResult) -> None:
        super().__init__(f"{result.service} run cancelled")
        self.result = result


async def run_tools(service: str, tools: list[Tool], job: Job) -> ServiceResult:
    """Run `tools` concurrently (the job's CPU budget limits the subprocesses) and build the service result.

    Cancelled, it stops the tools still running and raises ToolsStopped with the finished tools' outputs, each
    unfinished tool recorded as `cancelled`.
    """
    runs = [asyncio.create_task(run_tool(tool, job), name=f"tool {tool.name}") for tool in tools]
    try:
        outputs = await asyncio.gather(*runs)
    except asyncio.CancelledError:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        kept = [_finished_output(tool, run) for tool, run in zip(tools, runs, strict=True)]
        raise ToolsStopped(_service_result(service, kept, job, status="cancelled")) from None
    return _service_result(service, list(outputs), job)


def _finished_output(tool: Tool, run: asyncio.Task[ToolOutput]) -> ToolOutput:
    """A tool's output when it finished before the cancel, else a `cancelled` record of it."""
    if run.done() and not run.cancelled() and run.exception() is None:
        return run.result()
    return ToolOutput(run=ToolRun(tool=tool.name, status="cancelled", reason="the run was cancelled first"))


def _service_result(
    service: str, outputs: list[ToolOutput], job: Job, status: ServiceStatus | None = None
) -> ServiceResult:
    runs = [output.run for output in outputs]
    findings = [finding for output in outputs for finding in output.findings]
    failures = [
        f"{run.tool}: {run.reason or run.status}"
        for run in runs
        if run.status in ("failed", "timeout", "cancelled")
    ]
    return ServiceResult(
        service=service,
        status=status or service_status(runs),
        tools=runs,
        findings=findings,
        sarif=sarif_for(runs, findings, app_root_of(job.task.model_slug, job.task.app_number)),
        raw_outputs={output.run.tool: output.raw_output for output in outputs if output.raw_output},
        metrics={output.run.tool: output.metrics for output in outputs if output.metrics},
        error="; ".join(failures) or None,
    )
