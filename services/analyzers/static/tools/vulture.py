"""vulture: dead Python code (unused imports, variables, functions, classes; unreachable code)."""

from __future__ import annotations

import re

from services.analyzers.static.tools.cli_tool import CliTool
from services.analyzers.static.tools.source import AppSource, as_arguments
from services.analyzers.static.tools.warm_tool import WarmTool
from shared.operations.process import ProcessOutcome
from shared.results.findings import Finding

MIN_CONFIDENCE = "60"
# `backend/app.py:58: unused function 'index' (60% confidence)` (one line per finding, its only output format)
LINE = re.compile(
    r"^(?P<path>.+?):(?P<line>\d+): (?P<message>.+) \((?P<confidence>\d+)% confidence(?:, \d+ lines?)?\)$"
)
_QUOTED = re.compile(r"'[^']*'")


def kind(message: str) -> str:
    """A rule id from vulture's wording: "unused import 'os'" → unused-import, "unreachable code after
    'return'" → unreachable-code, "unsatisfiable 'if' condition" → unsatisfiable-condition."""
    words = [word for word in _QUOTED.sub(" ", message).lower().split() if word != "after"]
    return "-".join(words) or "dead-code"


class Vulture(CliTool):
    name = "vulture"
    program = "vulture"
    warm = WarmTool("vulture")  # its imports and plugin loading are most of a small app's run
    # 3: dead code found; 1: some file could not be parsed (reported on stderr; the others still are); 2: bad arguments
    ok_exit_codes = frozenset({0, 1, 3})

    def command(self, program: str, files: list[str]) -> list[str]:
        # --config /dev/null: settings come from this command line, not from the app's pyproject.toml
        return [program, "--config", "/dev/null", "--min-confidence", MIN_CONFIDENCE, *as_arguments(files)]

    def parse(self, outcome: ProcessOutcome, source: AppSource) -> list[Finding]:
        findings = []
        for text in outcome.stdout.splitlines():
            match = LINE.match(text.strip())
            if match is None:
                continue
            findings.append(
                source.finding(
                    rule_id=kind(match["message"]),
                    severity="low",
                    message=f"{match['message']} ({match['confidence']}% confidence)",
                    path=match["path"],
                    line=int(match["line"]),
                    category="dead-code",
                    extra={"confidence": int(match["confidence"])},
                )
            )
        return findings
