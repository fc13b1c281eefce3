"""The `assay` command: `up`, `analyze`, `status`, `cancel`, `trace`, `token`.

Exit codes: 0 success (for `analyze --wait`: the task completed); 1 the task ended partial, failed or cancelled,
or is still running at the timeout, or the task/spans were not found; 2 the request was not accepted (the
gateway's reason is printed) or the gateway could not be reached.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import msgspec
from opentelemetry import trace as otel_trace

from services.cli import tokens
from services.cli.api_token import gateway_client
from services.cli.client import GatewayClient, GatewayError
from services.cli.render import progress_line, render_task
from services.cli.supervisor import run_up
from services.cli.trace_tree import render_traces
from shared.config import Settings, load_settings
from shared.logs import setup_logging
from shared.messages import PRIORITIES, TERMINAL_STATUSES
from shared.span_files import SpanRecord, span_files, spans_of_traces, trace_ids_of_task
from shared.tasks import AnalysisType
from shared.tracing import setup_tracing

ANALYSIS_TYPES: tuple[str, ...] = get_args(AnalysisType)
POLL_INTERVAL_S = 1.0


def _fail(message: str, code: int) -> int:
    print(f"assay: {message}", file=sys.stderr)
    return code


def analyze(settings: Settings, args: argparse.Namespace) -> int:
    body: dict[str, object] = {
        "model_slug": args.model_slug,
        "app_number": args.app_number,
        "analysis_type": args.type,
        "priority": args.priority,
    }
    if args.tools:
        body["tools"] = [tool.strip() for tool in args.tools.split(",") if tool.strip()]
    if args.target:
        body["target_urls"] = args.target
    with gateway_client(settings) as gateway:
        try:
            accepted = gateway.run_analysis(body)
        except GatewayError as error:
            refused = f"request refused ({error.status})" if error.status else "request not sent"
            return _fail(f"{refused}: {error}", 2)
        print(accepted["task_id"], flush=True)
        if not args.wait:
            return 0
        return wait_for(gateway, settings, accepted["task_id"], args.timeout)


def wait_for(gateway: GatewayClient, settings: Settings, task_id: str, timeout_s: float) -> int:
    """Poll until the task is terminal, showing progress on stderr; then print the summary."""
    deadline = time.monotonic() + timeout_s
    shown = ""
    live = sys.stderr.isatty()
    while True:
        try:
            task = gateway.task(task_id)
        except GatewayError as error:
            if error.status is not None and error.status < 500:
                return _fail(str(error), 1)
            task = None  # gateway restarting: keep polling until the deadline
        if task is not None:
            line = progress_line(task)
            if line != shown:
                print(
                    f"\r\033[K{line}" if live else line, end="" if live else "\n", file=sys.stderr, flush=True
                )
                shown = line
            if task["status"] in TERMINAL_STATUSES:
                if live:
                    print(file=sys.stderr)
                print(render_task(task, settings.results_dir))
                return 0 if task["status"] == "completed" else 1
        if time.monotonic() > deadline:
            return _fail(
                f"{task_id} not finished after {timeout_s:g} s (it keeps running; see assay status)", 1
            )
        time.sleep(POLL_INTERVAL_S)


def status(settings: Settings, args: argparse.Namespace) -> int:
    with gateway_client(settings) as gateway:
        try:
            task = gateway.task(args.task_id)
        except GatewayError as error:
            return _fail(str(error), 1 if error.status else 2)
    print(render_task(task, settings.results_dir))
    return 0


def cancel(settings: Settings, args: argparse.Namespace) -> int:
    with gateway_client(settings) as gateway:
        try:
            answer = gateway.cancel(args.task_id)
        except GatewayError as error:
            return _fail(str(error), 1 if error.status else 2)
    print(f"{answer['task_id']}: {answer['status']}")
    return 0


def trace(settings: Settings, args: argparse.Namespace) -> int:
    if args.dir:
        files = span_files(args.dir)
        # The task's own trace is the one its earliest span (the request that created it) belongs to.
        traces = spans_of_traces(files, trace_ids_of_task(files, args.task_id)[:1])
        trace_id = next(iter(traces), None)
    else:
        with gateway_client(settings, timeout_s=10) as gateway:
            try:
                answer = gateway.trace(args.task_id)
            except GatewayError as error:
                return _fail(str(error), 1 if error.status else 2)
        trace_id = answer.get("trace_id")
        spans = msgspec.convert(answer.get("spans") or [], list[SpanRecord])
        traces = {trace_id: spans} if trace_id and spans else {}
    if not traces:
        where = f"under {args.dir}" if args.dir else "in the gateway's span files"
        hint = f"; with OTLP configured, look up trace {trace_id} in your trace explorer" if trace_id else ""
        return _fail(f"no spans for task {args.task_id} {where}{hint}", 1)
    print(render_traces(traces))
    return 0


def up(settings: Settings, _args: argparse.Namespace) -> int:
    setup_logging("supervisor", settings.log_level)
    return run_up(settings)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="assay", description="Analyze generated web apps with real tools.")
    root.add_argument(
        "--trace",
        action="store_true",
        help="trace this command's own calls to the gateway (they leave none otherwise)",
    )
    commands = root.add_subparsers(dest="command", required=True)

    commands.add_parser("up", help="run every service locally until Ctrl-C").set_defaults(handler=up)

    run = commands.add_parser("analyze", help="submit an analysis (and with --wait, follow it)")
    run.add_argument("model_slug")
    run.add_argument("app_number", type=int)
    # No argparse `choices`: the gateway validates, so its reason is what the user sees (exit 2).
    run.add_argument("--type", default="static", help=f"{' | '.join(ANALYSIS_TYPES)} (default: static)")
    run.add_argument("--tools", help="comma-separated tools to run (default: all of the type)")
    run.add_argument("--priority", default="normal", help=f"{' | '.join(PRIORITIES)} (default: normal)")
    run.add_argument(
        "--target",
        action="append",
        metavar="URL",
        help="URL of an app you started, for dynamic/performance checks (repeatable; default: Assay starts the app)",
    )
    run.add_argument("--wait", action="store_true", help="wait for the end and print a findings summary")
    run.add_argument("--timeout", type=float, default=900.0, help="seconds --wait waits (default 900)")
    run.set_defaults(handler=analyze)

    show = commands.add_parser("status", help="print a task")
    show.add_argument("task_id")
    show.set_defaults(handler=status)

    stop = commands.add_parser("cancel", help="ask a task to stop")
    stop.add_argument("task_id")
    stop.set_defaults(handler=cancel)

    spans = commands.add_parser(
        "trace", help="print a task's trace as a tree (the gateway reads its span files)"
    )
    spans.add_argument("task_id")
    spans.add_argument(
        "--dir", type=Path, help="read this folder of span files instead of asking the gateway"
    )
    spans.set_defaults(handler=trace)

    tokens.add_parser(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handler: Callable[[Settings, argparse.Namespace], int] = args.handler
    settings = load_settings()
    if not args.trace:
        return handler(settings, args)
    provider = setup_tracing("cli", settings.trace_dir)
    try:
        with otel_trace.get_tracer("services.cli").start_as_current_span(f"assay {args.command}"):
            return handler(settings, args)
    finally:
        provider.shutdown()


if __name__ == "__main__":
    sys.exit(main())
