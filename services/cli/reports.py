"""`assay report`: the model comparison as the gateway renders it (Markdown, CSV or JSON), for every task or one
batch, or what changed from one batch to another (`--against`)."""

from __future__ import annotations

import argparse
import sys
from typing import get_args

from services.cli.api_token import gateway_client
from services.cli.client import GatewayError
from shared.operations.config import Settings
from shared.wire.tasks import AnalysisType

ANALYSIS_TYPES: tuple[str, ...] = get_args(AnalysisType)


def report(settings: Settings, args: argparse.Namespace) -> int:
    """Print the report; exit 1 when the gateway refuses, 2 when it cannot be reached (or the options clash)."""
    if args.against and not args.batch:
        print("assay: --against compares with --batch: name both batches", file=sys.stderr)
        return 2
    params: dict[str, str | float] = {"format": "json" if args.json else args.format, "alpha": args.alpha}
    params |= {name: value for name, value in (("analysis_type", args.type), ("batch", args.batch)) if value}
    if args.against:
        params["against"] = args.against
    path = "/api/reports/models/compare" if args.against else "/api/reports/models"
    with gateway_client(settings, timeout_s=120) as gateway:
        try:
            text = gateway.report(path, params)
        except GatewayError as error:
            print(f"assay: {error}", file=sys.stderr)
            return 1 if error.status else 2
    print(text.rstrip("\n"))
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`assay report …`, registered on the CLI's subcommands."""
    compare = commands.add_parser(
        "report",
        help="compare models: verdicts with intervals, pairwise tests, weakness families, quality figures",
    )
    compare.add_argument("--type", help=f"one analysis type ({' | '.join(ANALYSIS_TYPES)}; default: all)")
    compare.add_argument("--batch", help="only this batch's tasks (see assay batch list)")
    compare.add_argument("--against", metavar="BATCH_ID", help="show what changed from this batch to --batch")
    compare.add_argument(
        "--alpha", type=float, default=0.05, help="significance level of the pairwise tests (default 0.05)"
    )
    compare.add_argument("--format", choices=("markdown", "csv", "json"), default="markdown")
    compare.add_argument("--json", action="store_true", help="same as --format json")
    compare.set_defaults(handler=report)
