"""`assay tasks`, `assay show`, `assay findings`: what the gateway knows, for people (tables) and scripts (--json)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from services.cli.api_token import gateway_client
from services.cli.client import GatewayClient, GatewayError
from services.cli.diffs import finding_rows
from services.cli.render import render_task, table, verdict_brief
from shared.operations.config import Settings
from shared.results.findings import SEVERITIES

MAX_PAGE = 1000  # the gateway's largest page of findings


def emit(answer: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    """The gateway's answer as JSON for scripts, else rendered for people."""
    print(json.dumps(answer, indent=2) if as_json else render(answer))


def ask(settings: Settings, call: Callable[[GatewayClient], Any]) -> Any:
    """One gateway call; its failure is raised as the exit code to return (1: refused, 2: not reachable)."""
    with gateway_client(settings) as gateway:
        try:
            return call(gateway)
        except GatewayError as error:
            print(f"assay: {error}", file=sys.stderr)
            raise SystemExit(1 if error.status else 2) from error


def render_tasks(page: dict[str, Any]) -> str:
    rows: list[list[object]] = [
        [
            task["task_id"],
            task["status"],
            task["analysis_type"],
            f"{task['model_slug']}/app{task['app_number']}",
            task["findings_count"],
            task["created_at"][:19].replace("T", " "),
            verdict_brief(task.get("verdicts")),
        ]
        for task in page["tasks"]
    ]
    shown = f"{len(rows)} of {page['total']} tasks"
    headers = ["task", "status", "type", "app", "findings", "created (UTC)", "verdicts"]
    return "\n".join([*table(headers, rows, (4,)), shown])


def tasks(settings: Settings, args: argparse.Namespace) -> int:
    filters = {"model_slug": args.model, "app_number": args.app, "status": args.status, "limit": args.limit}
    filters["batch"] = args.batch
    emit(ask(settings, lambda gateway: gateway.tasks(filters)), args.json, render_tasks)
    return 0


def render_issues(page: dict[str, Any]) -> str:
    rows: list[list[object]] = [
        [
            issue["severity"],
            issue["weakness"],
            f"{issue.get('path') or ''}{':' + str(issue['line']) if issue.get('line') else ''}",
            issue["findings_count"],
            ", ".join(issue["tools"]),
        ]
        for issue in page["issues"]
    ]
    header = f"{page['total']} issues from {page['findings_total']} findings"
    return "\n".join([header, *table(["severity", "weakness", "where", "findings", "tools"], rows, (3,))])


def show(settings: Settings, args: argparse.Namespace) -> int:
    def both(gateway: GatewayClient) -> dict[str, Any]:
        return {
            "task": gateway.task(args.task_id),
            "issues": gateway.issues(args.task_id, {"limit": args.limit}),
        }

    answer = ask(settings, both)
    emit(
        answer,
        args.json,
        lambda shown: (
            render_task(shown["task"], settings.results_dir) + "\n\n" + render_issues(shown["issues"])
        ),
    )
    return 0


def render_findings(page: dict[str, Any]) -> str:
    header = f"{len(page['findings'])} of {page['total']} findings"
    return "\n".join(
        [header, *table(["severity", "tool", "rule", "where", "message"], finding_rows(page["findings"]))]
    )


def findings(settings: Settings, args: argparse.Namespace) -> int:
    filters = {"severity": args.severity, "tool": args.tool, "limit": min(args.limit, MAX_PAGE)}
    emit(ask(settings, lambda gateway: gateway.findings(args.task_id, filters)), args.json, render_findings)
    return 0


def add_listing_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`assay tasks`, `assay show`, `assay findings`, registered on the CLI's subcommands."""
    listed = commands.add_parser("tasks", help="list tasks, newest first")
    listed.add_argument("--model", help="only this model's tasks")
    listed.add_argument("--app", type=int, help="only this app number's tasks")
    listed.add_argument("--status", help="pending | running | completed | partial | failed | cancelled")
    listed.add_argument("--batch", help="only this batch's tasks (see assay batch list)")
    listed.add_argument("--limit", type=int, default=50, help="how many (default 50, at most 500)")
    listed.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
    listed.set_defaults(handler=tasks)

    one = commands.add_parser("show", help="a task with its findings grouped into issues")
    one.add_argument("task_id")
    one.add_argument("--limit", type=int, default=100, help="issues listed (default 100)")
    one.add_argument("--json", action="store_true", help="print the task and its issues as JSON")
    one.set_defaults(handler=show)

    found = commands.add_parser("findings", help="a task's findings, most severe first")
    found.add_argument("task_id")
    found.add_argument("--severity", help=" | ".join(SEVERITIES))
    found.add_argument("--tool", help="only this tool's findings")
    found.add_argument("--limit", type=int, default=MAX_PAGE, help=f"how many (default and most: {MAX_PAGE})")
    found.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
    found.set_defaults(handler=findings)
