"""Plain-text views of a task for the terminal: status line, per-tool table, per-severity table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.results.findings import SEVERITIES


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()) -> list[str]:
    """Columns padded to their widest cell; the columns in `numeric` are right-aligned."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [
            cell.rjust(width) if column in numeric else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(row) for row in cells]


def tool_rows(task: dict[str, Any]) -> list[list[object]]:
    return [
        [
            run["tool"],
            run["service"],
            run["status"],
            run["findings_count"],
            f"{run['duration_s']:.2f} s",
            run.get("reason") or "",
        ]
        for run in task.get("tools", [])
    ]


def render_task(task: dict[str, Any], results_root: Path | None = None) -> str:
    """The task as the CLI prints it: header, services in trouble, per-tool and per-severity tables, where to look."""
    subject = f"{task['analysis_type']} of {task['model_slug']}/app{task['app_number']}"
    lines = [f"task {task['task_id']}: {task['status']}  ({subject}, priority {task['priority']})"]
    if task.get("status_reason"):
        lines.append(f"reason: {task['status_reason']}")
    if task["status"] in ("pending", "running"):
        progress = task.get("progress") or {}
        lines.append(f"progress: {progress.get('percent', 0):.0f}% {progress.get('message') or ''}".rstrip())
    for service in task.get("services", []):
        if service.get("error"):
            lines.append(f"service {service['service']} {service['status']}: {service['error']}")
    rows = tool_rows(task)
    if rows:
        lines += [
            "",
            *table(["tool", "service", "status", "findings", "duration", "note"], rows, numeric=(3, 4)),
        ]
    lines += verdict_lines(task.get("verdicts"), task.get("waived_rules") or [])
    breakdown = task.get("severity_breakdown") or {}
    issues = task.get("issue_severity_breakdown") or {}
    severity_rows: list[list[object]] = [
        [level, breakdown.get(level, 0), issues.get(level, 0)] for level in SEVERITIES
    ]
    severity_rows.append(["total", task.get("findings_count", 0), task.get("issues_count", 0)])
    lines += ["", *table(["severity", "findings", "issues"], severity_rows, numeric=(1, 2))]
    load = task.get("load") or []
    if load:
        rows = [
            [v["url"], v["requests"], v["errors"], f"{v['error_rate']:.1%}", _ms(v["p50_ms"]), _ms(v["p99_ms"]),
             "" if v["throughput_rps"] is None else f"{v['throughput_rps']:.1f}"]
            for v in load
        ]  # fmt: skip
        headers = ["load test", "requests", "errors", "error rate", "p50", "p99", "req/s"]
        lines += ["", *table(headers, rows, numeric=(1, 2, 3, 4, 5, 6))]
    if task.get("result_dir"):
        # The gateway's absolute path first: it resolves from any folder the CLI runs in.
        folder = Path(task.get("result_path") or (results_root or Path()) / task["result_dir"])
        lines += ["", f"result folder: {folder}"]
    elif task["status"] not in ("pending", "running"):
        lines += ["", "result folder: none recorded"]
    if task.get("integrity_note"):
        lines.append(f"repaired: {task['integrity_note']}")
    if task.get("trace_id"):
        lines.append(f"trace id: {task['trace_id']}  (assay trace {task['task_id']})")
    return "\n".join(lines)


VERDICTS = ("works", "exploitable", "flagged")


def verdict_lines(verdicts: dict[str, Any] | None, waived: list[str]) -> list[str]:
    """The task's verdicts, one per line with its reason (none until the task has ended)."""
    if not verdicts:
        return []
    rows = [[name, verdicts[name]["answer"], verdicts[name]["reason"]] for name in VERDICTS]
    lines = ["", *table(["verdict", "answer", "why"], rows)]
    if waived:
        lines.append(f"waived by its batch: {', '.join(waived)}")
    return lines


def verdict_brief(verdicts: dict[str, Any] | None) -> str:
    """`works yes, exploitable no, flagged yes`, or `–` before the task has ended."""
    if not verdicts:
        return "–"
    return ", ".join(f"{name} {verdicts[name]['answer']}" for name in VERDICTS)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} ms"
