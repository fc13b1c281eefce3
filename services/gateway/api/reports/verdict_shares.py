"""The report's lead: per model and analysis type, the share of apps that work, that are not exploitable, that are
both, and that are not flagged, each with Wilson's 95 % interval (none below MIN_APPS apps with a known answer).

An app counts in a share when its verdict is known (`yes` or `no`); `unknown` answers are counted apart, never as
failures. "Both" is known when `works` and `exploitable` both are: the headline figure of published evaluations of
generated backends (the share of apps that are both correct and secure).
"""

from __future__ import annotations

import msgspec

from services.gateway.api.reports.confidence import LEVEL, MIN_APPS, TOO_FEW, wilson_interval
from services.gateway.api.reports.queries import CountedTask
from shared.results.verdicts import Answer

MEASURES: dict[str, str] = {
    "works": "apps that work",
    "not_exploitable": "apps not exploitable",
    "both": "apps that work and are not exploitable",
    "not_flagged": "apps not flagged",
}


def _negated(answer: Answer) -> Answer:
    return {"yes": "no", "no": "yes", "unknown": "unknown"}[answer]  # type: ignore[return-value]


def judged(measure: str, works: Answer, exploitable: Answer, flagged: Answer) -> Answer:
    """One app's answer for one measure, from its three verdicts: yes, no, or unknown."""
    if measure == "works":
        return works
    if measure == "not_exploitable":
        return _negated(exploitable)
    if measure == "not_flagged":
        return _negated(flagged)
    if "unknown" in (works, exploitable):
        return "unknown"
    return "yes" if works == "yes" and exploitable == "no" else "no"


class Interval(msgspec.Struct, frozen=True, kw_only=True):
    low: float
    high: float


class Share(msgspec.Struct, frozen=True, kw_only=True):
    """`yes` of `known` apps (`unknown` more had no answer), the share, and its interval or why none."""

    yes: int
    known: int
    unknown: int
    share: float | None  # None: no app with a known answer
    interval: Interval | None
    note: str | None = None  # why there is no interval


class AppVerdicts(msgspec.Struct, frozen=True, kw_only=True):
    """One counted app: its task and its three answers (the dashboard opens these from a cell)."""

    app_number: int
    task_id: str
    works: Answer
    exploitable: Answer
    flagged: Answer

    def answer(self, measure: str) -> Answer:
        return judged(measure, self.works, self.exploitable, self.flagged)


class VerdictRow(msgspec.Struct, frozen=True, kw_only=True):
    model_slug: str
    analysis_type: str
    apps: int  # counted apps
    works: Share
    not_exploitable: Share
    both: Share
    not_flagged: Share
    app_verdicts: list[AppVerdicts]


def share_of(answers: list[Answer]) -> Share:
    """The share of `yes` among the known answers, with Wilson's interval from MIN_APPS known answers on."""
    yes = answers.count("yes")
    known = yes + answers.count("no")
    unknown = len(answers) - known
    if known == 0:
        return Share(
            yes=0, known=0, unknown=unknown, share=None, interval=None, note="no app with a known answer"
        )
    share = round(yes / known, 6)
    if known < MIN_APPS:
        return Share(yes=yes, known=known, unknown=unknown, share=share, interval=None, note=TOO_FEW)
    low, high = wilson_interval(yes, known, LEVEL)
    interval = Interval(low=round(low, 6), high=round(high, 6))
    return Share(yes=yes, known=known, unknown=unknown, share=share, interval=interval)


def app_verdicts(task: CountedTask) -> AppVerdicts:
    """A counted task's answers (unknown for a task that ended before verdicts existed)."""
    verdicts = task.verdicts
    return AppVerdicts(
        app_number=task.app_number,
        task_id=task.task_id,
        works=verdicts.works.answer if verdicts else "unknown",
        exploitable=verdicts.exploitable.answer if verdicts else "unknown",
        flagged=verdicts.flagged.answer if verdicts else "unknown",
    )


def verdict_row(model: str, analysis_type: str, tasks: list[CountedTask]) -> VerdictRow:
    """The four shares of one model's apps of one analysis type, and each app's answers."""
    apps = [app_verdicts(task) for task in tasks]
    shares = {measure: share_of([app.answer(measure) for app in apps]) for measure in MEASURES}
    return VerdictRow(
        model_slug=model, analysis_type=analysis_type, apps=len(tasks), app_verdicts=apps, **shares
    )
