"""The `assay` command: `up`, `analyze`, `batch`, `status`, `cancel`, `diff`, `report`, `tasks`, `show`,
`findings`, `trace`, `token`, `subscriber`, `dlq`, `fsck`, `prune` (the last two: services/cli/upkeep.py, with their
own exit codes), `replay` (services/cli/replay.py: a dynamic finding's proof sent again).

Exit codes: 0 success (for `analyze --wait`: the task completed); 1 the task ended partial, failed or cancelled,
or is still running at the timeout, or has findings at or above `--fail-on` (with `--new-only`: new since the
previous run), or the task/spans were not found; 2 the request was not accepted (the
gateway's reason is printed) or the gateway could not be reached; 141 the reader of the output went away (a closed
pipe: one line on stderr, no traceback). Every command that prints the gateway's answer takes `--json`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import msgspec
from opentelemetry import trace as otel_trace

from services.cli import (
    analyzer_view,
    app_import,
    batch_views,
    dead_letters,
    replay,
    reports,
    subscriber,
    tokens,
    upkeep,
)
from services.cli.api_token import gateway_client
from services.cli.batches import FRESH_HELP, add_batch_parser, run_batch
from services.cli.client import GatewayClient, GatewayError
from services.cli.diffs import render_diff
from services.cli.gate import at_or_above, gate_message
from services.cli.listing import add_listing_parsers
from services.cli.render import render_task
from services.cli.supervisor import run_up
from services.cli.trace_tree import render_traces
from shared.operations.config import Settings, load_settings
from shared.operations.errors import AssayError
from shared.operations.logs import setup_logging
from shared.results.findings import SEVERITIES
from shared.store.file_modes import keep_files_private
from shared.telemetry.span_files import SpanRecord, span_files, spans_of_traces, trace_ids_of_task
from shared.telemetry.tracing import setup_tracing
from shared.wire.messages import PRIORITIES, TERMINAL_STATUSES
from shared.wire.tasks import AnalysisType

ANALYSIS_TYPES: tuple[str, ...] = get_args(AnalysisType)
POLL_INTERVAL_S = 1.0
CLOSED_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a program stopped by a closed pipe


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
    if args.fresh:
        body["options"] = {"fresh": True}
    with gateway_client(settings) as gateway:
        try:
            accepted = gateway.run_analysis(body)
        except GatewayError as error:
            refused = f"request refused ({error.status})" if error.status else "request not sent"
            return _fail(f"{refused}: {error}", 2)
        if not args.wait:
            print(json.dumps(accepted, indent=2) if args.json else accepted["task_id"], flush=True)
            return 0
        deadline = time.monotonic() + args.timeout
        if not args.json:
            print(accepted["task_id"], flush=True)
            analyzer_view.watch(gateway, accepted["task_id"], deadline, sys.stderr)
        try:
            # The persister records the end just after the event: poll for the task as it ended, quietly.
            task = wait_terminal(gateway, accepted["task_id"], deadline, args.timeout)
        except CommandFailed as failure:
            return _fail(str(failure), failure.code)
        print(json.dumps(task, indent=2) if args.json else render_task(task, settings.results_dir))
        code = 0 if task["status"] == "completed" else 1
        if args.fail_on:
            code = max(code, gate(gateway, task, args.fail_on, args.new_only))
        return code


class CommandFailed(AssayError):
    """A command cannot go on: its message is printed (no traceback) and `code` is the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def wait_terminal(gateway: GatewayClient, task_id: str, deadline: float, timeout_s: float) -> dict[str, Any]:
    """Poll until the task is terminal or `deadline` (time.monotonic) passes, `timeout_s` after the wait began
    (quietly: the analyzer view shows the progress); the task as it ended."""
    while True:
        try:
            task = gateway.task(task_id)
        except GatewayError as error:
            if error.status is not None and error.status < 500:
                raise CommandFailed(str(error), 1) from error
            task = None  # gateway restarting: keep polling until the deadline
        if task is not None and task["status"] in TERMINAL_STATUSES:
            return task
        if time.monotonic() > deadline:
            raise CommandFailed(
                f"{task_id} not finished after {timeout_s:g} s (it keeps running; see assay status)", 1
            )
        time.sleep(POLL_INTERVAL_S)


def gate(gateway: GatewayClient, task: dict[str, Any], threshold: str, new_only: bool) -> int:
    """1 when the task has (new) findings of `threshold` or worse, said on stderr; else 0."""
    against = None
    breakdown = task["severity_breakdown"]
    if new_only:
        try:
            diff = gateway.diff(task["task_id"])
        except GatewayError as error:
            return _fail(f"cannot compare with the previous run: {error}", 1)
        against, breakdown = diff["against"], diff["new_by_severity"]
    count = at_or_above(breakdown, threshold)
    if count:
        return _fail(gate_message(count, threshold, new_only, against), 1)
    return 0


def diff(settings: Settings, args: argparse.Namespace) -> int:
    with gateway_client(settings) as gateway:
        try:
            answer = gateway.diff(args.task_id, args.against)
        except GatewayError as error:
            return _fail(str(error), 1 if error.status else 2)
    print(json.dumps(answer, indent=2) if args.json else render_diff(answer))
    return 0


def batch(settings: Settings, args: argparse.Namespace) -> int:
    if args.action:
        return batch_views.run_action(settings, args)
    return run_batch(settings, args)


def status(settings: Settings, args: argparse.Namespace) -> int:
    with gateway_client(settings) as gateway:
        try:
            task = gateway.task(args.task_id)
        except GatewayError as error:
            return _fail(str(error), 1 if error.status else 2)
    print(json.dumps(task, indent=2) if args.json else render_task(task, settings.results_dir))
    return 0


def cancel(settings: Settings, args: argparse.Namespace) -> int:
    with gateway_client(settings) as gateway:
        try:
            if args.task_id.startswith("batch_"):
                answer = gateway.cancel_batch(args.task_id)
                said = f"{answer['batch_id']}: cancelling {len(answer['cancelling'])} tasks"
            else:
                answer = gateway.cancel(args.task_id)
                said = f"{answer['task_id']}: {answer['status']}"
        except GatewayError as error:
            return _fail(str(error), 1 if error.status else 2)
    print(json.dumps(answer, indent=2) if args.json else said)
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
    if args.json:  # the gateway's trace answer, also when the spans come from --dir
        spans = sorted(traces[trace_id], key=lambda span: span.start_ns) if trace_id else []
        body = {"task_id": args.task_id, "trace_id": trace_id, "spans": msgspec.to_builtins(spans)}
        print(json.dumps(body, indent=2))
        return 0
    print(render_traces(traces))
    return 0


def up(settings: Settings, args: argparse.Namespace) -> int:
    setup_logging("supervisor", settings.log_level)
    return run_up(settings, args.cluster, args.json)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="assay", description="Analyze generated web apps with real tools.")
    root.add_argument(
        "--trace",
        action="store_true",
        help="trace this command's own calls to the gateway (they leave none otherwise)",
    )
    commands = root.add_subparsers(dest="command", required=True)

    start = commands.add_parser("up", help="run every service locally until Ctrl-C")
    start.add_argument(
        "--cluster",
        type=int,
        choices=(1, 3, 5),
        default=1,
        help="nats-server nodes to run as one JetStream cluster (3: any one may fail; streams keep 3 replicas)",
    )
    start.add_argument(
        "--json", action="store_true", help="once ready, print where everything listens as one JSON object"
    )
    start.set_defaults(handler=up)

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
    run.add_argument("--fresh", action="store_true", help=FRESH_HELP)
    run.add_argument("--timeout", type=float, default=900.0, help="seconds --wait waits (default 900)")
    run.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        help="with --wait: exit 1 when the task has findings of this severity or worse",
    )
    run.add_argument(
        "--new-only",
        action="store_true",
        help="with --fail-on: count only findings new since the previous run",
    )
    run.add_argument(
        "--json", action="store_true", help="print the gateway's JSON (the task as it ended with --wait)"
    )
    run.set_defaults(handler=analyze)

    show = commands.add_parser("status", help="print a task")
    show.add_argument("task_id")
    show.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
    show.set_defaults(handler=status)

    batches = add_batch_parser(commands)
    batch_views.add_arguments(batches)
    batches.set_defaults(handler=batch)
    add_listing_parsers(commands)

    stop = commands.add_parser("cancel", help="ask a task (or every unfinished task of a batch) to stop")
    stop.add_argument("task_id", help="a task id, or a batch id")
    stop.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
    stop.set_defaults(handler=cancel)

    changes = commands.add_parser("diff", help="new, fixed and unchanged findings of a task against another")
    changes.add_argument("task_id")
    changes.add_argument(
        "against", nargs="?", help="the task to compare with (default: the previous completed run)"
    )
    changes.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
    changes.set_defaults(handler=diff)

    reports.add_parser(commands)

    spans = commands.add_parser(
        "trace", help="print a task's trace as a tree (the gateway reads its span files)"
    )
    spans.add_argument("task_id")
    spans.add_argument(
        "--dir", type=Path, help="read this folder of span files instead of asking the gateway"
    )
    spans.add_argument("--json", action="store_true", help="print the trace id and its spans as JSON")
    spans.set_defaults(handler=trace)

    tokens.add_parser(commands)
    subscriber.add_parser(commands)
    dead_letters.add_parser(commands)
    upkeep.add_parsers(commands)
    replay.add_parser(commands)
    app_import.add_parsers(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handler: Callable[[Settings, argparse.Namespace], int] = args.handler
    try:
        settings = load_settings()
    except ValueError as error:  # a setting out of its range: its own words, no traceback
        return _fail(str(error), 2)
    keep_files_private(settings, database=True)
    try:
        if not args.trace:
            return handler(settings, args)
        provider = setup_tracing("cli", settings.trace_dir)
        try:
            with otel_trace.get_tracer("services.cli").start_as_current_span(f"assay {args.command}"):
                return handler(settings, args)
        finally:
            provider.shutdown()
    except BrokenPipeError:
        return closed_pipe()


def closed_pipe() -> int:
    """The reader of our output went away (`assay tasks | head`): say so in one line, not a traceback.

    Further writes to stdout go to /dev/null, so the interpreter's final flush does not fail again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    print("assay: output closed before everything was written (broken pipe)", file=sys.stderr)
    return CLOSED_PIPE


if __name__ == "__main__":
    sys.exit(main())
