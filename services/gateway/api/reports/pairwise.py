"""Which differences between models are real: a paired test over the same apps, and the ranking it allows.

Models are compared on each measure (services/gateway/api/reports/verdict_shares.py) over the apps both were judged on,
paired by app number: app N of every model answers the same task of the study, so a pair differs only by the model
that wrote it. For each pair of models, McNemar's exact test looks at the discordant pairs alone (one model's app
yes, the other's no): under "no difference" each is equally likely to go either way, so the two-sided p-value is
that of a binomial(discordant, 1/2) count as extreme as the smaller side. The p-values of one measure and analysis
type are adjusted for the comparisons made together (Holm's step-down method, which controls the chance of any
false "different" at `alpha`); a difference is significant when its adjusted p-value is below `alpha`.

The ranking orders models by the share of their headline measure (`both` where any model has known answers, else
`not_flagged`), and says for each model which others it is significantly better than: models with no significant
difference between them share no order, however their shares differ.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import msgspec

from services.gateway.api.reports.confidence import MIN_APPS
from services.gateway.api.reports.verdict_shares import MEASURES, Interval, VerdictRow

ALPHA = 0.05
HEADLINES = (
    "both",
    "not_flagged",
)  # the first that any model of a type has known answers for leads its ranking


class PairwiseTest(msgspec.Struct, frozen=True, kw_only=True):
    """One measure, two models, over the apps both were judged on."""

    analysis_type: str
    measure: str
    model_a: str
    model_b: str
    pairs: int  # apps (by number) with a known answer for both models
    a_only: int  # pairs where only model a's app says yes
    b_only: int  # pairs where only model b's app says yes
    p_value: float  # McNemar's exact test
    p_adjusted: float  # Holm's adjustment over the pairs of models of this measure and type
    significant: bool  # p_adjusted < alpha
    better: str | None  # the model whose apps say yes more often, when significant
    note: str | None = None


class RankEntry(msgspec.Struct, frozen=True, kw_only=True):
    rank: int  # by share; models that no test tells apart still get consecutive ranks: see `better_than`
    model_slug: str
    measure: str
    share: float
    interval: Interval | None
    known: int
    better_than: list[str]  # models this one is significantly better than on `measure`
    not_distinguished_from: list[str]  # models no test told apart from this one


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact p-value of McNemar's test from the two discordant counts."""
    discordant = a_only + b_only
    if discordant == 0:
        return 1.0
    tail: int = sum(comb(discordant, k) for k in range(min(a_only, b_only) + 1))
    return min(1.0, float(2 * tail / 2**discordant))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given."""
    order = sorted(range(len(p_values)), key=p_values.__getitem__)
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - position) * p_values[index]))
        adjusted[index] = running
    return adjusted


def known_answers(row: VerdictRow, measure: str) -> dict[int, bool]:
    """App number -> whether its answer is yes, for the apps of the row with a known answer."""
    return {
        app.app_number: answer == "yes"
        for app in row.app_verdicts
        if (answer := app.answer(measure)) != "unknown"
    }


def paired(a: dict[int, bool], b: dict[int, bool]) -> tuple[int, int, int]:
    """(pairs, a_only, b_only) over the app numbers both models have a known answer for."""
    both = a.keys() & b.keys()
    a_only = sum(1 for number in both if a[number] and not b[number])
    b_only = sum(1 for number in both if b[number] and not a[number])
    return len(both), a_only, b_only


def pairwise_tests(analysis_type: str, rows: list[VerdictRow], alpha: float = ALPHA) -> list[PairwiseTest]:
    """Every pair of the type's models (`rows`, one per model) on every measure, adjusted per measure."""
    tests: list[PairwiseTest] = []
    for measure in MEASURES:
        known = {row.model_slug: known_answers(row, measure) for row in rows}
        counted = [(a, b, *paired(known[a], known[b])) for a, b in combinations(sorted(known), 2)]
        counted = [entry for entry in counted if entry[2] > 0]
        raw = [mcnemar_exact(a_only, b_only) for _a, _b, _pairs, a_only, b_only in counted]
        for (a, b, pairs, a_only, b_only), p_value, adjusted in zip(counted, raw, holm(raw), strict=True):
            significant = adjusted < alpha
            tests.append(
                PairwiseTest(
                    analysis_type=analysis_type,
                    measure=measure,
                    model_a=a,
                    model_b=b,
                    pairs=pairs,
                    a_only=a_only,
                    b_only=b_only,
                    p_value=round(p_value, 6),
                    p_adjusted=round(adjusted, 6),
                    significant=significant,
                    better=(a if a_only > b_only else b) if significant else None,
                    note=f"few pairs (fewer than {MIN_APPS}): only a large difference can show"
                    if pairs < MIN_APPS
                    else None,
                )  # fmt: skip
            )
    return tests


def ranking(rows: list[VerdictRow], tests: list[PairwiseTest]) -> list[RankEntry]:
    """The type's models by the share of its headline measure, each with whom it significantly beats."""
    measure = next(
        (m for m in HEADLINES if any(getattr(row, m).known for row in rows)),
        None,
    )
    if measure is None:
        return []
    shares = [
        (row.model_slug, getattr(row, measure)) for row in rows if getattr(row, measure).share is not None
    ]
    shares.sort(key=lambda item: (-item[1].share, item[0]))
    decided = [test for test in tests if test.measure == measure]
    entries = []
    for rank, (model, share) in enumerate(shares, 1):
        mine = [test for test in decided if model in (test.model_a, test.model_b)]
        beaten = sorted(
            (test.model_b if test.model_a == model else test.model_a)
            for test in mine
            if test.significant and test.better == model
        )
        together = sorted(
            (test.model_b if test.model_a == model else test.model_a) for test in mine if not test.significant
        )
        entries.append(
            RankEntry(
                rank=rank,
                model_slug=model,
                measure=measure,
                share=share.share or 0.0,
                interval=share.interval,
                known=share.known,
                better_than=beaten,
                not_distinguished_from=together,
            )
        )
    return entries
