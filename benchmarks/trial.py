"""One load run against one system and what it shows: which tasks were accepted and persisted when, the
throughput from the first accept to the last persisted, and the accept → persisted percentiles."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from benchmarks.load import Submission


@dataclass(frozen=True)
class Trial:
    submission: Submission
    persisted: dict[str, float]  # task id → persisted time (epoch seconds)
    waited_s: float  # from the first request to the end of the wait
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds of each role over the run

    @property
    def complete(self) -> bool:
        return self.submission.refused == 0 and len(self.persisted) == len(self.submission.accepted)

    def throughput(self) -> float | None:
        """Tasks persisted per second, first accept → last persisted (None when nothing was persisted)."""
        first = self.submission.first_accept
        if first is None or not self.persisted:
            return None
        return len(self.persisted) / max(1e-6, max(self.persisted.values()) - first)

    def latencies(self) -> list[float]:
        """Accept → persisted seconds of every persisted task, sorted."""
        accepted = self.submission.accepted
        return sorted(self.persisted[task] - accepted[task] for task in self.persisted if task in accepted)

    def percentile(self, share: int) -> float | None:
        """The `share`-th percentile of accept → persisted (None with fewer than two tasks persisted)."""
        values = self.latencies()
        if len(values) < 2:
            return None
        return statistics.quantiles(values, n=100, method="inclusive")[share - 1]

    def note(self, wanted: int) -> str:
        """Empty when all `wanted` tasks were accepted and persisted; otherwise how far it got."""
        if self.complete and len(self.persisted) == wanted:
            return ""
        accepted = len(self.submission.accepted)
        sent = f", {accepted:,} accepted" if accepted < wanted else ""
        refused = ""
        if self.submission.refused:
            refused = f", {self.submission.refused:,} refused (last: {self.submission.last_error[:80]})"
        return f"{len(self.persisted):,}/{wanted:,} persisted in {self.waited_s:.0f} s{sent}{refused}"
