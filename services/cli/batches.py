"""`assay batch`: queue one analysis per chosen app and type, and follow the batch in one live progress view."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

from services.cli.api_token import gateway_client
from services.cli.client import GatewayClient, GatewayError
from services.cli.render import table
from shared.operations.config import Settings
from shared.operations.errors import InputError

STATUS_COLUMNS = ("pending", "running", "completed", "partial", "failed", "cancelled")
POLL_INTERVAL_S = 1.0


FRESH_HELP = "run every tool again, even where a stored run of unchanged inputs could be reused"


def names(value: str | None) -> list[str]:
    """`a,b` → [a, b]; `all` or nothing → [] (which the gateway reads as every one)."""
    if not value or value.strip() == "all":
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def batch_body(args: argparse.Namespace) -> dict[str, Any]:
    apps = names(args.apps)
    if not all(app.isdigit() for app in apps):
        raise InputError(f"--apps takes app numbers (1,2,…) or all, not {args.apps!r}")
    body: dict[str, Any] = {
        "models": names(args.models),
        "apps": [int(app) for app in apps],
        "analysis_types": names(args.type) or ["static"],
        "priority": args.priority,
    }
    if args.tools:
        body["tools"] = names(args.tools)
    if args.waive:  # the option is services/cli/batch_views.py's
        body["waived_rules"] = names(args.waive)
    if args.fresh:
        body["fresh"] = True
    return body


def render_progress(progress: dict[str, Any]) -> list[str]:
    """One row per model and a total row: tasks per status."""
    rows: list[list[object]] = [
        [model, *(counts.get(status, 0) for status in STATUS_COLUMNS)]
        for model, counts in progress["by_model"].items()
    ]
    rows.append(["total", *(progress["by_status"].get(status, 0) for status in STATUS_COLUMNS)])
    header = (
        f"{progress['batch_id']}: {progress['done']}/{progress['total']} done ({progress['percent']:.0f}%)"
    )
    return [header, *table(["model", *STATUS_COLUMNS], rows, numeric=tuple(range(1, 7)))]


def follow(
    gateway: GatewayClient, batch_id: str, timeout_s: float, out: TextIO = sys.stderr
) -> dict[str, Any]:
    """Poll until every task of the batch has ended, redrawing the view in place on a terminal."""
    deadline = time.monotonic() + timeout_s
    shown: list[str] = []
    live = out.isatty()
    while True:
        progress = gateway.batch(batch_id)
        lines = render_progress(progress)
        if lines != shown:
            if live and shown:
                out.write(f"\033[{len(shown)}F\033[J")  # back to the view's first line, clear below
            out.write("\n".join(lines) + "\n")
            out.flush()
            shown = lines
        if progress["finished"] or time.monotonic() > deadline:
            return progress
        time.sleep(POLL_INTERVAL_S)


def run_batch(settings: Settings, args: argparse.Namespace) -> int:
    """Queue (or, with --follow, find) a batch; with --wait, follow it. Exit 0 when every task completed."""
    with gateway_client(settings) as gateway:
        try:
            if args.follow:
                batch_id = args.follow
            else:
                accepted = gateway.create_batch(batch_body(args))
                batch_id = accepted["batch_id"]
                if args.json and not args.wait:
                    print(json.dumps(accepted, indent=2))
                    return 0
                # With --json stdout holds one JSON document (the batch as it ended): the id goes to stderr.
                print(batch_id, file=sys.stderr if args.json else sys.stdout, flush=True)
                print(f"{len(accepted['task_ids'])} tasks queued", file=sys.stderr)
                for missing in accepted["missing"]:
                    print(f"not found, skipped: {missing}", file=sys.stderr)
            if not (args.wait or args.follow):
                return 0
            progress = follow(gateway, batch_id, args.timeout)
        except ValueError as error:
            print(f"assay: {error}", file=sys.stderr)
            return 2
        except GatewayError as error:
            print(f"assay: {error}", file=sys.stderr)
            return 1 if error.status and error.status != 422 else 2
    if args.json:
        print(json.dumps(progress, indent=2))
    if not progress["finished"]:
        print(f"assay: {batch_id} not finished after {args.timeout:g} s (it keeps running)", file=sys.stderr)
        return 1
    return 0 if progress["by_status"].get("completed", 0) == progress["total"] else 1


def add_batch_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """`assay batch …`, registered on the CLI's subcommands."""
    batch = commands.add_parser("batch", help="analyze many apps at once and follow them as one batch")
    batch.add_argument("--models", help="comma-separated model slugs, or all (default: all)")
    batch.add_argument("--apps", help="comma-separated app numbers, or all (default: all of each model)")
    batch.add_argument("--type", help="comma-separated analysis types (default: static)")
    batch.add_argument("--tools", help="comma-separated tools (default: all of each type)")
    batch.add_argument("--priority", default="normal", help="urgent | high | normal | low (default: normal)")
    batch.add_argument("--wait", action="store_true", help="follow the batch until every task has ended")
    batch.add_argument("--follow", metavar="BATCH_ID", help="follow an existing batch instead of queuing one")
    batch.add_argument("--timeout", type=float, default=3600.0, help="seconds --wait waits (default 3600)")
    batch.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
    batch.add_argument("--fresh", action="store_true", help=FRESH_HELP)
    return batch
