"""Waived rules: what a study asked of its apps is not a flaw of the apps.

A batch may declare rules its task required of the apps (a generation prompt that demands binding to `0.0.0.0`
makes every app trip bandit B104). Each waiver names a rule of one tool (`bandit:B104`: those findings) or a
weakness (`CWE-605`: every finding of that weakness, whichever tool reported it, as issue groups read it). Waived
findings count in no verdict and no figure of the batch's tasks; the report lists the waivers it applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

import msgspec

from shared.results.weakness_families import weakness_of

WAIVER_PATTERN = r"^(CWE-[1-9][0-9]{0,5}|[a-z0-9][a-z0-9._-]{0,63}:[A-Za-z0-9][A-Za-z0-9._/:-]{0,127})$"
Waiver = Annotated[str, msgspec.Meta(pattern=WAIVER_PATTERN, description="`tool:rule_id` or `CWE-<n>`")]
MAX_WAIVERS = 64


def rule_name(tool: str, rule_id: str) -> str:
    """`tool:rule_id`, as a waiver names a rule."""
    return f"{tool}:{rule_id}"


@dataclass(frozen=True)
class Waivers:
    """The waivers of one task (or one report), split into rules and weaknesses."""

    rules: frozenset[str] = frozenset()
    weaknesses: frozenset[str] = frozenset()

    @classmethod
    def of(cls, waived: Iterable[str]) -> Waivers:
        names = set(waived)
        weaknesses = {name for name in names if name.startswith("CWE-")}
        return cls(rules=frozenset(names - weaknesses), weaknesses=frozenset(weaknesses))

    def __bool__(self) -> bool:
        return bool(self.rules or self.weaknesses)

    def covers(self, tool: str, rule_id: str, cwe: str | None) -> bool:
        """Whether a finding of this tool, rule and CWE is waived."""
        if not self:
            return False
        return rule_name(tool, rule_id) in self.rules or weakness_of(tool, rule_id, cwe)[0] in self.weaknesses

    def covers_group(self, weakness_name: str, rules: Iterable[str]) -> bool:
        """Whether an issue group of this weakness, whose findings come from `rules`, is waived: its weakness is,
        or every one of its rules is."""
        if not self:
            return False
        named = list(rules)
        return weakness_name in self.weaknesses or (bool(named) and all(rule in self.rules for rule in named))
