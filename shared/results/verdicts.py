"""A task's verdicts on its app: does it work, can it be broken, and is it flagged. One definition for the service
that judges, the persister that stores them (`tasks.verdicts`) and the gateway that shows them."""

from __future__ import annotations

from typing import Literal

import msgspec

Answer = Literal["yes", "no", "unknown"]


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """One answer, why, and the findings behind it (their fingerprints)."""

    answer: Answer
    reason: str
    findings: list[str] = []


class Verdicts(msgspec.Struct, frozen=True, kw_only=True):
    """`works`: the endpoints the app declares answer as promised (unknown where it declares none);
    `exploitable`: a confirmed finding with proof at `high` or worse; `flagged`: static or unconfirmed findings at
    `high` or worse."""

    works: Verdict
    exploitable: Verdict
    flagged: Verdict
