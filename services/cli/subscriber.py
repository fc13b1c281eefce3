"""`assay subscriber [--json]`: how a program outside Assay reaches its events on the embedded NATS server.

`assay up` starts the server on a free port with a password per user, so neither is known in advance: this prints
the URL it wrote to `<var>/nats-url` and the read-only user `subscriber` (shared/jetstream/nats_users.py) with its password,
as `NATS_URL=…`, `NATS_USER=…` and `NATS_PASSWORD=…` lines (`export $(assay subscriber)`: the variables the `nats`
command line tool reads too, and none that Assay itself reads), or as one JSON object. With ASSAY_NATS_URL set, the
server is the operator's own, and so are its users.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from services.cli.credentials import nats_url_file
from shared.jetstream.nats_users import SUBSCRIBER, credentials_file, load_credentials
from shared.operations.config import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    if settings.nats_url:
        print(
            "assay: ASSAY_NATS_URL names your own NATS server: connect with a user its operator gave you",
            file=sys.stderr,
        )
        return 1
    try:
        url = nats_url_file(settings.var_dir).read_text(encoding="utf-8").strip()
        password = load_credentials(settings.var_dir)[SUBSCRIBER]
    except (FileNotFoundError, KeyError):
        print(
            f"assay: no embedded NATS server recorded under {settings.var_dir} "
            f"({nats_url_file(settings.var_dir).name}, {credentials_file(settings.var_dir).name}): "
            "start one with `assay up` (run this from the same folder)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps({"nats_url": url, "user": SUBSCRIBER, "password": password}))
    else:
        print(f"NATS_URL={url}\nNATS_USER={SUBSCRIBER}\nNATS_PASSWORD={password}")
    return 0


def add_parser(commands: Any) -> None:
    """The `subscriber` subcommand."""
    command = commands.add_parser(
        "subscriber",
        help="print the embedded NATS server's URL and the read-only user for programs that follow events",
    )
    command.add_argument("--json", action="store_true", help="print them as one JSON object")
    command.set_defaults(handler=run)
