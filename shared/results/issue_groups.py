"""Issue groups: the findings of several tools that point at one place and mean one weakness are one issue.

One vulnerable line can be reported by bandit, ruff and semgrep (and again under a related rule); each raw finding
is kept, and each carries the key of its issue group, so that counts can be given both ways: findings and distinct
issues.

- **Kind** of a finding: the weakness family (shared/results/weakness_families.py) of its weakness (shared/results/rule_table.py:
  the table's CWE for its tool and rule, else its own CWE with aliases folded, else `<tool>:<rule_id>`), so one flaw
  reported as CWE-20 and CWE-502, or as CWE-327 and CWE-916, is one issue.
- **Place**: the file (or URL) and the lines from `line` to `end_line`. Findings of one kind in one file whose
  line ranges overlap form one group (transitively), so a query built on one line and run on the next is one issue
  when a rule spans both; one-line findings on one line more than SAME_SITE_COLUMNS apart are different sites.
  Findings without a line group by file, kind and rule (each missing header its own issue).
- **Group key**: the first 32 hex digits of sha256(path, kind, first line of the group). It depends only on
  what was found, never on the order of the findings or on which of the tools found it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from shared.results.findings import SEVERITIES, Finding
from shared.results.rule_table import weakness
from shared.results.weakness_families import family_of

# Findings on one line further apart than this many columns are different sites (bandit, ruff and semgrep place one
# call within a few columns of each other).
SAME_SITE_COLUMNS = 40


def group_key(path: str | None, weakness_name: str, first_line: int | str | None) -> str:
    """The key of a group: its place and kind, anchored at its first line (`<line>@<column>` for a later site on
    a line that already began a group)."""
    material = "\x1f".join((path or "", weakness_name, "" if first_line is None else str(first_line)))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def kind(finding: Finding) -> str:
    """What a group is about: the weakness family of the finding's weakness (CWE-327, -328 and -916 are one weak
    hash, CWE-20 and -502 one deserialization), else the weakness itself (`ruff:E501`)."""
    named = weakness(finding.tool, finding.rule_id, finding.cwe)
    family = family_of(named)
    return family.id if family else named


def group_keys(findings: Sequence[Finding]) -> list[str]:
    """The issue group key of each finding, in the order given."""
    by_place: dict[tuple[str | None, str], list[int]] = {}
    for index, finding in enumerate(findings):
        by_place.setdefault((finding.path, kind(finding)), []).append(index)
    keys = [""] * len(findings)
    for (path, kind_name), members in by_place.items():
        with_line = sorted(
            (i for i in members if findings[i].line is not None),
            key=lambda i: (*_span(findings[i]), findings[i].column or 0),
        )
        for i in members:
            if findings[i].line is None:  # one group per rule: each missing header, each advisory, its own
                keys[i] = group_key(path, f"{kind_name}\x1f{findings[i].rule_id}", None)
        clusters: list[list[int]] = []
        cluster_end = 0
        for i in with_line:
            start, end = _span(findings[i])
            if not clusters or start > cluster_end or _other_site(findings[clusters[-1][-1]], findings[i]):
                clusters.append([])
                cluster_end = end
            cluster_end = max(cluster_end, end)
            clusters[-1].append(i)
        anchors: set[int] = set()
        for cluster in clusters:
            first = findings[cluster[0]]
            line = _span(first)[0]
            anchor: int | str = line if line not in anchors else f"{line}@{first.column}"
            anchors.add(line)
            _assign(keys, cluster, group_key(path, kind_name, anchor))
    return keys


def _span(finding: Finding) -> tuple[int, int]:
    start = finding.line or 0
    return start, max(start, finding.end_line or start)


def _other_site(before: Finding, after: Finding) -> bool:
    """Two one-line findings on the same line whose columns lie far apart are two sites (a minified line holds a
    whole program), not one flaw seen twice."""
    one_line = _span(before)[0] == _span(before)[1] == _span(after)[0] == _span(after)[1]
    if not one_line or before.column is None or after.column is None:
        return False
    return abs(after.column - before.column) > SAME_SITE_COLUMNS


def _assign(keys: list[str], members: list[int], key: str) -> None:
    for i in members:
        keys[i] = key


def most_severe(severities: Sequence[str]) -> str:
    """The issue's severity: the highest its findings were given."""
    return min(
        severities, key=lambda level: SEVERITIES.index(level) if level in SEVERITIES else len(SEVERITIES)
    )


def issue_severity_breakdown(members: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Distinct issues per severity, every level present, from (group key, finding severity) pairs."""
    severities: dict[str, list[str]] = {}
    for key, severity in members:
        severities.setdefault(key, []).append(severity)
    counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
    for levels in severities.values():
        counts[most_severe(levels)] += 1
    return counts
