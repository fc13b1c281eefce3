"""`assay dlq list|show|replay`: the dead letters in ASSAY_DLQ, through the gateway (admin scope)."""

from __future__ import annotations

import argparse
from typing import Any

from services.cli.listing import ask, emit
from services.cli.render import table
from shared.operations.config import Settings


def render_list(page: dict[str, Any]) -> str:
    rows: list[list[object]] = [
        [
            letter["id"],
            letter["occurred_at"][:19].replace("T", " "),
            letter["task_id"] or "-",
            letter["consumer"],
            letter["deliveries"],
            letter["reason"],
        ]
        for letter in page["dead_letters"]
    ]
    more = f"; more after {page['next_after']} (--after {page['next_after']})" if page["next_after"] else ""
    shown = f"{len(rows)} dead letter{'' if len(rows) == 1 else 's'}{more}"
    return "\n".join(
        [*table(["id", "at (UTC)", "task", "consumer", "deliveries", "reason"], rows, (0, 4)), shown]
    )


def render_letter(letter: dict[str, Any]) -> str:
    fields = ["id", "occurred_at", "task_id", "stream", "subject", "consumer", "deliveries", "reason"]
    return "\n".join([*(f"{name}: {letter[name]}" for name in fields), "payload:", letter["payload"]])


def render_replayed(accepted: dict[str, Any]) -> str:
    return f"dead letter {accepted['replayed_from']} queued again as {accepted['task_id']}"


def dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        emit(
            ask(settings, lambda gateway: gateway.dead_letters(args.after, args.limit)),
            args.json,
            render_list,
        )
    elif args.action == "show":
        emit(ask(settings, lambda gateway: gateway.dead_letter(args.id)), args.json, render_letter)
    else:
        emit(ask(settings, lambda gateway: gateway.replay_dead_letter(args.id)), args.json, render_replayed)
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`assay dlq …`, registered on the CLI's subcommands."""
    dlq = commands.add_parser(
        "dlq", help="messages given up on (ASSAY_DLQ): list, show, replay (admin token)"
    )
    actions = dlq.add_subparsers(dest="action", required=True)
    listed = actions.add_parser("list", help="dead letters, oldest first")
    listed.add_argument("--after", type=int, default=0, help="only those after this id")
    listed.add_argument("--limit", type=int, default=50, help="how many (default 50, at most 500)")
    shown = actions.add_parser("show", help="one dead letter with the message it holds")
    replayed = actions.add_parser("replay", help="queue a dead request again as a new task")
    for parser in (shown, replayed):
        parser.add_argument("id", type=int, help="the dead letter's id (its sequence in ASSAY_DLQ)")
    for parser in (listed, shown, replayed):
        parser.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
        parser.set_defaults(handler=dead_letters)
