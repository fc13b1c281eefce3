"""What the benchmarks share: the row they report, a timer, the table printer and realistic sample findings."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.results.findings import Finding, Severity, ToolRun, fingerprint
from shared.results.sarif import sarif_for
from shared.wire.messages import ServiceFinished
from shared.wire.protocol import ServiceResult
from shared.wire.tasks import TaskRef


@dataclass(frozen=True)
class Row:
    """One line of a benchmark's table: the same case measured the baseline's way and Assay's way."""

    case: str
    unit: str
    baseline: float | None
    assay: float | None
    higher_is_better: bool = False
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """How many times better Assay's figure is than the baseline's (above 1: Assay is better)."""
        if not self.baseline or not self.assay:
            return None
        return self.assay / self.baseline if self.higher_is_better else self.baseline / self.assay


def median_ns(work: Callable[[], object], loops: int, repeats: int, budget_s: float) -> float:
    """Median nanoseconds of one `work()` call over `repeats` timed batches of `loops` calls each.

    One untimed call warms up first. Stops early once `budget_s` is spent, after at least three batches.
    """
    work()
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter_ns()
        for _ in range(loops):
            work()
        samples.append((time.perf_counter_ns() - started) / loops)
        if len(samples) >= 3 and time.perf_counter() > deadline:
            break
    return statistics.median(samples)


def _figure(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"


def format_table(rows: list[Row]) -> str:
    """The rows side by side; `ratio` is Assay's advantage (×, above 1 better), whichever way the unit points."""
    header = ("case", "unit", "baseline", "Assay", "ratio", "")
    cells = [
        (
            row.case,
            row.unit,
            _figure(row.baseline),
            _figure(row.assay),
            "—" if row.ratio is None else f"{row.ratio:.2f}×",
            row.note,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in (header, *cells)) for i in range(len(header))]
    right = (False, False, True, True, True, False)

    def line(values: tuple[str, ...]) -> str:
        parts = [v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths).rstrip()
    return "\n".join([line(header), rule, *(line(values) for values in cells)])


# Sample data: what the static analyzer reports on a generated Flask + JS app, varied by line number.
# fmt: off
_TEMPLATES: tuple[tuple[str, str, Severity, str, str, str | None, str | None, str], ...] = (
    # tool, rule id, severity, category, message, cwe, help url, source line
    ("bandit", "B105", "low", "security", "Possible hardcoded password: 'changeme'", "CWE-259",
     "https://bandit.readthedocs.io/en/latest/plugins/b105_hardcoded_password_string.html",
     "app.config['SECRET_KEY'] = 'changeme'"),
    ("bandit", "B201", "high", "security", "A Flask app appears to be run with debug=True, which exposes the "
     "Werkzeug debugger and allows the execution of arbitrary code.", "CWE-94",
     "https://bandit.readthedocs.io/en/latest/plugins/b201_flask_debug_true.html",
     "app.run(host='0.0.0.0', port=5000, debug=True)"),
    ("ruff", "F401", "low", "quality", "`os` imported but unused", None,
     "https://docs.astral.sh/ruff/rules/unused-import", "import os"),
    ("pylint", "C0116", "info", "quality", "Missing function or method docstring", None,
     "https://pylint.readthedocs.io/en/latest/user_guide/messages/convention/missing-function-docstring.html",
     "def create_item():"),
    ("pylint", "W0718", "medium", "quality", "Catching too general exception Exception", None, None,
     "except Exception as error:"),
    ("mypy", "arg-type", "medium", "type", 'Argument 1 to "get_item" has incompatible type "str | None"; '
     'expected "int"', None, None, "item = get_item(request.args.get('id'))"),
    ("vulture", "unused-function", "low", "dead-code", "unused function 'legacy_export' (60% confidence)",
     None, None, "def legacy_export(rows):"),
    ("radon", "C901", "medium", "complexity", "'handle_checkout' is too complex (D, cyclomatic complexity 23)",
     None, None, "def handle_checkout(cart, user, coupon):"),
    ("semgrep", "python.flask.security.injection.tainted-sql-string.tainted-sql-string", "high", "security",
     "Detected user input used to manually construct a SQL string. This could lead to SQL injection.",
     "CWE-89", "https://semgrep.dev/r/python.flask.security.injection.tainted-sql-string",
     'cursor.execute(f"SELECT * FROM items WHERE name = \'{name}\'")'),
    ("eslint", "no-unused-vars", "low", "quality", "'response' is assigned a value but never used.", None,
     "https://eslint.org/docs/latest/rules/no-unused-vars", "const response = await fetch('/api/items');"),
)
# fmt: on


def sample_findings(count: int) -> list[Finding]:
    """`count` findings shaped like real tool output: the templates above at shifting lines and columns."""
    findings = []
    for index in range(count):
        tool, rule, severity, category, message, cwe, help_url, source = _TEMPLATES[index % len(_TEMPLATES)]
        path = (
            "frontend/app.js" if tool == "eslint" else f"backend/{('app', 'models', 'routes')[index % 3]}.py"
        )
        line = 1 + index // len(_TEMPLATES)
        extra: dict[str, object] = {"source": source}
        if tool == "bandit":
            extra.update(confidence="HIGH", test_name="hardcoded_password_string")
        elif tool == "pylint":
            extra.update(symbol="missing-function-docstring", obj="create_item")
        findings.append(
            Finding(
                tool=tool,
                rule_id=rule,
                severity=severity,
                message=message,
                path=path,
                line=line,
                column=1 + index % 40,
                end_line=line + index % 3,
                category=category,
                cwe=cwe,
                help_url=help_url,
                fingerprint=fingerprint(tool, rule, path, f"{source} #{index}"),
                extra=extra,
            )
        )
    return findings


def sample_tool_runs(findings: list[Finding]) -> list[ToolRun]:
    """One successful record per tool the findings name, with the kind of command the static analyzer runs."""
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.tool] = counts.get(finding.tool, 0) + 1
    return [
        ToolRun(
            tool=tool,
            status="success",
            version="1.0.0",
            command=[tool, "--format", "json", "backend/app.py", "backend/models.py", "backend/routes.py"],
            exit_code=1,
            duration_s=0.5 + position / 10,
            files_analyzed=3,
            findings_count=count,
        )
        for position, (tool, count) in enumerate(counts.items())
    ]


def service_event(count: int) -> ServiceFinished:
    """A static analyzer's `service` event: tool records, `count` findings and their SARIF log."""
    findings = sample_findings(count)
    runs = sample_tool_runs(findings)
    result = ServiceResult(
        service="static", status="success", tools=runs, findings=findings, sarif=sarif_for(runs, findings)
    )
    return ServiceFinished(
        task=TaskRef(
            id="task_0123456789ab", model_slug="openai_codex-mini", app_number=1, analysis_type="static"
        ),
        service="static",
        status="success",
        result=result,
    )
