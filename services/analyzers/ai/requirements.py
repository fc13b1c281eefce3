"""The `requirements-review` tool: the model judges whether the code implements each requirement.

The requirements come from the app's requirements.json; every requirement judged not met is a finding.

Requirements are the file's `functional_requirements` and its `endpoints` ("Endpoint GET /api/notes answers
200"), numbered R1, R2, … in that order. Verdicts are matched back by that id, else by their text;
requirements the answer leaves out are listed as `unanswered` in the metrics (neither met nor a finding), and
an answer that judges none of them fails the tool.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec

from services.analyzers.ai.prompts import Requirement, requirements_messages
from services.analyzers.ai.review import RequirementVerdict, Review
from services.analyzers.ai.reviewer import InvalidInput, ModelReview, Question, ReviewOutcome, app_label
from services.analyzers.ai.sources import REQUIREMENTS_FILE, Sources
from services.analyzers.base.job import Job
from services.analyzers.base.tool import SkipTool
from shared.results.findings import Finding, fingerprint, normalize_source_line

RULE_ID = "requirement-not-met"


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    path: str
    expected_status: int | None = None


class Specification(msgspec.Struct, frozen=True, kw_only=True):
    """requirements.json, as far as this review reads it (other keys are ignored)."""

    title: str = ""
    description: str = ""
    functional_requirements: list[str] = []
    endpoints: list[Endpoint] = []

    def requirements(self) -> list[Requirement]:
        texts = list(self.functional_requirements)
        for endpoint in self.endpoints:
            answers = f" answers {endpoint.expected_status}" if endpoint.expected_status is not None else ""
            texts.append(f"Endpoint {endpoint.method.upper()} {endpoint.path}{answers}")
        return [Requirement(id=f"R{number}", text=text) for number, text in enumerate(texts, 1)]


async def load_specification(app_dir: Path) -> tuple[Specification, str]:
    """The decoded file and its text; SkipTool when absent, InvalidInput when malformed."""
    try:
        data = await asyncio.to_thread((app_dir / REQUIREMENTS_FILE).read_bytes)
    except FileNotFoundError:
        raise SkipTool(f"no {REQUIREMENTS_FILE} in the app folder") from None
    try:
        return msgspec.json.decode(data, type=Specification), data.decode(errors="replace")
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise InvalidInput(f"{REQUIREMENTS_FILE} is invalid: {error}") from error


def _spec_line(spec_text: str, requirement: Requirement, spec: Specification) -> int | None:
    """Where requirements.json states a requirement, so the finding points at it."""
    number = int(requirement.id[1:])
    if number <= len(spec.functional_requirements):
        needle = msgspec.json.encode(spec.functional_requirements[number - 1]).decode()
    else:
        needle = msgspec.json.encode(
            spec.endpoints[number - len(spec.functional_requirements) - 1].path
        ).decode()
    for index, line in enumerate(spec_text.splitlines(), 1):
        if needle in line:
            return index
    return None


def _match(
    verdicts: list[RequirementVerdict], requirements: list[Requirement]
) -> dict[str, RequirementVerdict]:
    """Each requirement's verdict: by id first, else by text; the first verdict for a requirement wins."""
    by_id = {requirement.id.lower(): requirement for requirement in requirements}
    by_text = {normalize_source_line(requirement.text).lower(): requirement for requirement in requirements}
    matched: dict[str, RequirementVerdict] = {}
    for verdict in verdicts:
        requirement = by_id.get((verdict.id or "").strip().lower()) or by_text.get(
            normalize_source_line(verdict.requirement).lower()
        )
        if requirement is not None and requirement.id not in matched:
            matched[requirement.id] = verdict
    return matched


class RequirementsReview(ModelReview):
    name = "requirements-review"

    async def question(self, job: Job, sources: Sources) -> Question:
        assert job.app_dir is not None  # the base skips a job without a source folder before asking
        spec, spec_text = await load_specification(job.app_dir)
        requirements = spec.requirements()
        if not requirements:
            raise SkipTool(f"{REQUIREMENTS_FILE} lists no requirements")

        def judge(review: Review) -> ReviewOutcome:
            matched = _match(review.requirements, requirements)
            if not matched:
                return ReviewOutcome(
                    problem=f"the answer judged none of the {len(requirements)} requirements"
                )
            findings: list[Finding] = []
            for requirement in requirements:
                verdict = matched.get(requirement.id)
                if verdict is None or verdict.met:
                    continue
                evidence = verdict.evidence.strip()
                findings.append(
                    Finding(
                        tool=self.name,
                        rule_id=RULE_ID,
                        severity="medium",
                        message=f"Requirement not met: {requirement.text}"
                        + (f" ({evidence})" if evidence else ""),
                        path=REQUIREMENTS_FILE,
                        line=_spec_line(spec_text, requirement, spec),
                        category="requirements",
                        # The requirement's own text anchors it: the model's wording of the evidence varies.
                        fingerprint=fingerprint(self.name, RULE_ID, REQUIREMENTS_FILE, requirement.text),
                        extra={
                            "requirement_id": requirement.id,
                            "requirement": requirement.text,
                            "evidence": evidence,
                        },
                    )
                )
            metrics: dict[str, Any] = {
                "met": sum(1 for verdict in matched.values() if verdict.met),
                "total": len(requirements),
                "unmet": [finding.extra["requirement"] for finding in findings],
                "unanswered": [r.text for r in requirements if r.id not in matched],
                "summary": review.summary,
            }
            return ReviewOutcome(findings=findings, metrics=metrics)

        messages = requirements_messages(app_label(job), spec.title, spec.description, requirements, sources)
        return Question(messages=messages, judge=judge)
