"""A finding without proof is at most `low` (issue 19), for every dynamic tool: the active checks, the passive ones
that judge plain answers (headers, cookies, CORS, sensitive paths) and wapiti alike. A finding that names a weakness
(a CWE) and carries no proof, judged worse than `low`, is reported at `low`, and says so: its message ends with what
it was judged, and `extra.severity_without_proof` keeps that judgement. Findings that name no weakness (an app that
does not answer, an endpoint that breaks its promise) are facts of the run, not claims of a flaw, and keep theirs.

The analyzer wraps each of its tools in `ProofRule`, so no tool can forget it."""

from __future__ import annotations

import msgspec

from services.analyzers.base.job import Job
from services.analyzers.base.tool import Tool, ToolOutput
from shared.operations.config import Settings
from shared.results.findings import SEVERITIES, Finding
from shared.wire.protocol import ToolHealth

CEILING = "low"


def at_most_low_without_proof(finding: Finding) -> Finding:
    """`finding`, lowered to `low` when it names a weakness, has no proof and was judged worse."""
    if finding.proof is not None or finding.cwe is None:
        return finding
    if SEVERITIES.index(finding.severity) >= SEVERITIES.index(CEILING):
        return finding
    return msgspec.structs.replace(
        finding,
        severity=CEILING,
        message=f"{finding.message} [no proof: reported at {CEILING}, judged {finding.severity}]",
        extra={**finding.extra, "severity_without_proof": finding.severity},
    )


class ProofRule:
    """A dynamic tool whose findings pass `at_most_low_without_proof`; its name, health and run are the tool's."""

    def __init__(self, tool: Tool) -> None:
        self.tool = tool
        self.name = tool.name

    async def health(self, settings: Settings) -> ToolHealth:
        return await self.tool.health(settings)

    async def run(self, job: Job) -> ToolOutput:
        output = await self.tool.run(job)
        output.findings = [at_most_low_without_proof(finding) for finding in output.findings]
        return output
