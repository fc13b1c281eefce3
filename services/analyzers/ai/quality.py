"""The `code-quality-review` tool: the model reads the app's files and quality and security issues."""

from __future__ import annotations

from services.analyzers.ai.prompts import quality_messages
from services.analyzers.ai.review import MAX_FINDINGS, Review, to_finding
from services.analyzers.ai.reviewer import ModelReview, Question, ReviewOutcome, app_label
from services.analyzers.ai.sources import Sources
from services.analyzers.base.job import Job
from shared.results.findings import severity_breakdown


class CodeQualityReview(ModelReview):
    name = "code-quality-review"

    async def question(self, job: Job, sources: Sources) -> Question:
        def judge(review: Review) -> ReviewOutcome:
            findings = [to_finding(self.name, item, sources) for item in review.findings[:MAX_FINDINGS]]
            metrics = {
                "summary": review.summary,
                "reported": len(review.findings),
                "dropped": max(0, len(review.findings) - MAX_FINDINGS),
                "severity_breakdown": severity_breakdown(findings),
            }
            return ReviewOutcome(findings=findings, metrics=metrics)

        return Question(messages=quality_messages(app_label(job), sources), judge=judge)
