"""`assay batch list` (every batch, newest first, with its counts) and `assay batch findings <batch_id>` (all of a
batch's findings at once, JSON lines or CSV, to stdout or a file). Queuing and following a batch stay in
services/cli/batches.py; these two are the actions `assay batch` takes as its first argument."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from services.cli.api_token import gateway_client
from services.cli.client import GatewayError
from services.cli.render import table
from shared.operations.config import Settings

ACTIONS = ("list", "findings")
SHOWN_STATUSES = ("pending", "running", "completed", "partial", "failed", "cancelled")


def add_arguments(batch: argparse.ArgumentParser) -> None:
    """The actions' arguments, on the `assay batch` parser."""
    batch.add_argument(
        "action",
        nargs="?",
        choices=ACTIONS,
        help="list: every batch, newest first; findings BATCH_ID: all its findings (default: queue a batch)",
    )
    batch.add_argument("batch_id", nargs="?", help="the batch whose findings to export")
    batch.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        default="jsonl",
        help="findings: JSON lines or CSV (default jsonl)",
    )
    batch.add_argument("--output", type=Path, help="findings: write to this file instead of stdout")
    batch.add_argument(
        "--limit", type=int, default=20, help="list: how many batches (default 20, at most 500)"
    )
    batch.add_argument(
        "--waive",
        help="comma-separated rules the study's task asked of the apps (tool:rule or CWE-n, e.g. CWE-605 for "
        "binding to 0.0.0.0): counted in no verdict or figure of the batch",
    )


def render_batches(page: dict[str, Any]) -> str:
    rows: list[list[object]] = [
        [
            heading["batch_id"],
            heading["created_at"][:19].replace("T", " "),
            f"{heading['done']}/{heading['total']}",
            *(heading["by_status"].get(status, 0) for status in SHOWN_STATUSES),
            ",".join(heading["models"]),
            ",".join(heading["analysis_types"]),
        ]
        for heading in page["batches"]
    ]
    headers = ["batch", "created (UTC)", "ended", *SHOWN_STATUSES, "models", "types"]
    lines = table(headers, rows, numeric=tuple(range(2, 2 + 1 + len(SHOWN_STATUSES))))
    return "\n".join([*lines, f"{len(rows)} of {page['total']} batches"])


def run_action(settings: Settings, args: argparse.Namespace) -> int:
    """`assay batch list` or `assay batch findings BATCH_ID`; exit 1 when the gateway refuses, 2 unreachable."""
    with gateway_client(settings, timeout_s=120) as gateway:
        try:
            if args.action == "list":
                page = gateway.batches(args.limit)
                print(json.dumps(page, indent=2) if args.json else render_batches(page))
                return 0
            if not args.batch_id:
                print("assay: batch findings needs a BATCH_ID (see assay batch list)", file=sys.stderr)
                return 2
            chunks = gateway.batch_findings(args.batch_id, args.format)
            if args.output is None:
                for chunk in chunks:
                    sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                return 0
            with args.output.open("wb") as out:
                written = sum(out.write(chunk) for chunk in chunks)
            print(f"{written} bytes written to {args.output}", file=sys.stderr)
            return 0
        except GatewayError as error:
            print(f"assay: {error}", file=sys.stderr)
            return 1 if error.status else 2
