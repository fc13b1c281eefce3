"""`assay fsck [--repair] [--json]` and `assay prune --older-than 30d [--dry-run] [--json]`: keeping the database
and the result folders in agreement, and removing old results and stored tool runs (the reuse store).

Both work directly on the database ASSAY_DATABASE_URL names and the folder ASSAY_RESULTS_DIR names, as the
persister does, not through the gateway: the result folders are on the persister's disk, which only a program on
that machine can read and write (the gateway may run elsewhere and has no business writing results). Run them on
the persister's host with the persister's settings; they are safe while the stack runs (they touch only tasks
that have ended; the persister never writes those again).

Exit codes: fsck 0 when database and folders agree, 1 when a difference was found (with --repair: also when some
were repaired; run it again to see what is left), 2 when the database cannot be read; prune 0, 2 on a bad
`--older-than` or an unreadable database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from datetime import timedelta
from typing import Any

import msgspec
from sqlalchemy.exc import SQLAlchemyError

from services.analyzers.base.reuse import ReuseStore
from services.persister.upkeep.integrity import Problem, check
from services.persister.upkeep.prune import PruneReport, prune
from services.persister.upkeep.repair import Repair, repair
from shared.operations.config import Settings
from shared.store.database import create_engine, migrate, sessions

_AGE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s`, `2w` as a timedelta (argparse type)."""
    match = _AGE.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: use a whole number and a unit, e.g. 30d, 12h, 90m, 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _fsck(settings: Settings, fix: bool) -> tuple[list[Problem], list[Repair]]:
    async def run() -> tuple[list[Problem], list[Repair]]:
        engine = create_engine(settings.database_url)
        try:
            await migrate(engine)
            factory = sessions(engine)
            found = await check(factory, settings.results_dir)
            return found, (await repair(factory, settings.results_dir, found) if fix else [])
        finally:
            await engine.dispose()

    return asyncio.run(run())


def fsck(settings: Settings, args: argparse.Namespace) -> int:
    try:
        found, repairs = _fsck(settings, args.repair)
    except (SQLAlchemyError, OSError) as error:
        print(f"assay: cannot read the database or the results folder: {error}", file=sys.stderr)
        return 2
    if args.json:
        body: dict[str, Any] = {
            "results_dir": str(settings.results_dir),
            "problems": msgspec.to_builtins(found),
            "repairs": msgspec.to_builtins(repairs),
        }
        print(json.dumps(body, indent=2))
    else:
        for problem in found:
            print(
                f"{problem.kind:<18} {problem.task_id or '-':<17} {problem.result_dir or '-'}: {problem.detail}"
            )
        for done in repairs:
            print(f"{'repair ' + done.action:<18} {done.task_id or '-':<17} {done.detail}")
        print(f"{len(found)} difference(s) between the database and {settings.results_dir}", file=sys.stderr)
    return 1 if found else 0


def _prune(settings: Settings, older_than: timedelta, dry_run: bool) -> PruneReport:
    async def run() -> PruneReport:
        engine = create_engine(settings.database_url)
        try:
            await migrate(engine)
            factory = sessions(engine)
            return await prune(factory, settings.results_dir, older_than, settings.idempotency_ttl_s, dry_run)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def prune_old(settings: Settings, args: argparse.Namespace) -> int:
    try:
        report = _prune(settings, args.older_than, args.dry_run)
        store = ReuseStore(settings.reuse_dir, settings.reuse_max_bytes)
        reuse = store.prune(older_than_s=args.older_than.total_seconds(), dry_run=args.dry_run)
    except (SQLAlchemyError, OSError) as error:
        print(f"assay: cannot prune: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**msgspec.to_builtins(report), "reuse": msgspec.to_builtins(reuse)}, indent=2))
        return 0
    verb = "would remove" if report.dry_run else "removed"
    for task in report.tasks:
        rows = ", ".join(f"{count} {table}" for table, count in task.rows.items() if count)
        folder = task.result_dir if task.folder else "no folder"
        print(f"{verb} {task.task_id} ({task.status}, ended {task.finished_at}): {rows}; {folder}")
    for task_id in report.completed_interrupted:
        print(f"completed the interrupted prune of {task_id}")
    print(
        f"{verb} {len(report.tasks)} task(s) that ended before {report.cutoff.isoformat(timespec='seconds')} "
        f"and {report.idempotency_keys} expired idempotency key(s)",
        file=sys.stderr,
    )
    print(
        f"{verb} {reuse.removed} stored tool run(s) unused since then or beyond ASSAY_REUSE_MAX_BYTES "
        f"({reuse.freed_bytes} bytes); {reuse.kept} kept ({reuse.kept_bytes} bytes) in {settings.reuse_dir}",
        file=sys.stderr,
    )
    return 0


def add_parsers(commands: Any) -> None:
    """The `fsck` and `prune` subcommands."""
    where = "(direct: ASSAY_DATABASE_URL and ASSAY_RESULTS_DIR, on the persister's machine)"
    checking = commands.add_parser(
        "fsck", help=f"check that every task row agrees with its result folder {where}"
    )
    checking.add_argument(
        "--repair",
        action="store_true",
        help="write damaged or missing folders again from the database (the old one is kept under .fsck/), "
        "or mark the row; never deletes results",
    )
    checking.add_argument("--json", action="store_true", help="print the differences (and repairs) as JSON")
    checking.set_defaults(handler=fsck)

    pruning = commands.add_parser(
        "prune",
        help=f"remove tasks that ended long ago, rows and folders {where}, and stored tool runs unused since "
        "(ASSAY_REUSE_DIR, down to ASSAY_REUSE_MAX_BYTES)",
    )
    pruning.add_argument("--older-than", type=age, required=True, help="e.g. 30d, 12h, 2w")
    pruning.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    pruning.add_argument("--json", action="store_true", help="print the report as JSON")
    pruning.set_defaults(handler=prune_old)
