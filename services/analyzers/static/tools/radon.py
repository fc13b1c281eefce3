"""radon: cyclomatic complexity of Python functions; those ranked D, E or F are findings."""

from __future__ import annotations

import msgspec

from services.analyzers.static.tools.cli_tool import CliTool
from services.analyzers.static.tools.source import AppSource, as_arguments
from services.analyzers.static.tools.warm_tool import WarmTool
from shared.operations.process import ProcessOutcome
from shared.results.findings import Finding, Severity

MIN_RANK = "D"  # radon ranks A (1-5) … D (21-30), E (31-40), F (41+)
SEVERITY: dict[str, Severity] = {"D": "medium", "E": "high", "F": "high"}
FUNCTION_KINDS = (
    "function",
    "method",
)  # a class's block repeats its methods' complexity; the methods are listed


class RadonBlock(msgspec.Struct):
    type: str
    rank: str
    name: str
    complexity: int
    lineno: int
    endline: int | None = None
    col_offset: int = 0
    classname: str | None = None


class RadonFileError(msgspec.Struct):
    error: str


class Radon(CliTool):
    name = "radon"
    program = "radon"
    warm = WarmTool("radon")  # its imports and plugin loading are most of a small app's run
    ok_exit_codes = frozenset({0})

    def command(self, program: str, files: list[str]) -> list[str]:
        return [program, "cc", "--json", "--min", MIN_RANK, *as_arguments(files)]

    def parse(self, outcome: ProcessOutcome, source: AppSource) -> list[Finding]:
        # per file: a list of blocks, or {"error": …} when radon could not parse it (other tools report those)
        report = msgspec.json.decode(outcome.stdout, type=dict[str, list[RadonBlock] | RadonFileError])
        findings = []
        for path, blocks in report.items():
            if isinstance(blocks, RadonFileError):
                continue
            for block in blocks:
                if block.type not in FUNCTION_KINDS or block.rank not in SEVERITY:
                    continue
                name = f"{block.classname}.{block.name}" if block.classname else block.name
                findings.append(
                    source.finding(
                        rule_id=f"complexity-{block.rank}",
                        severity=SEVERITY[block.rank],
                        message=f"{block.type} {name} has cyclomatic complexity {block.complexity} (rank {block.rank})",
                        path=path,
                        line=block.lineno,
                        column=block.col_offset + 1,
                        end_line=block.endline,
                        category="complexity",
                        extra={"complexity": block.complexity, "function": name},
                    )
                )
        return findings
