"""Issue groups: the findings of several tools that point at one place and mean one weakness are one issue.

One vulnerable line can be reported by bandit, ruff and semgrep (and again under a related rule); each raw finding
is kept, and each carries the key of its issue group, so that counts can be given both ways: findings and distinct
issues.

- **Weakness** of a finding: the entry of `RULE_WEAKNESSES` for its tool and rule when there is one (tools that give
  no CWE, or a CWE that disagrees with the other tools for the same flaw), else its CWE (`CWE_ALIASES` folds a
  child weakness into the one other tools report), else `<tool>:<rule_id>` (only that rule of that tool matches).
- **Place**: the file (or URL) and the lines from `line` to `end_line`. Findings of one weakness in one file whose
  line ranges overlap form one group (transitively); findings without a line group by file and weakness alone.
- **Group key**: the first 32 hex digits of sha256(path, weakness, first line of the group). It depends only on
  what was found, never on the order of the findings or on which of the tools found it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from shared.results.findings import SEVERITIES, Finding

# (tool, rule id) -> weakness, for rules whose tool gives no CWE, or a CWE other tools give differently.
RULE_WEAKNESSES: dict[tuple[str, str], str] = {
    ("ruff", "S101"): "CWE-703",  # assert used (bandit B101)
    ("ruff", "S104"): "CWE-605",  # binding to all interfaces (bandit B104)
    ("ruff", "S105"): "CWE-798",  # hard-coded password string (bandit B105)
    ("ruff", "S106"): "CWE-798",  # hard-coded password argument (bandit B106)
    ("ruff", "S107"): "CWE-798",  # hard-coded password default (bandit B107)
    ("ruff", "S108"): "CWE-377",  # insecure temporary file (bandit B108)
    ("ruff", "S110"): "CWE-703",  # try-except-pass (bandit B110)
    ("ruff", "S113"): "CWE-400",  # request without timeout (bandit B113)
    ("ruff", "S201"): "CWE-489",  # Flask debug=True (bandit B201, semgrep python-flask-debug)
    ("bandit", "B201"): "CWE-489",  # bandit says CWE-94; semgrep and ruff describe the same active debug code
    ("ruff", "S301"): "CWE-502",  # pickle (bandit B301)
    ("ruff", "S307"): "CWE-78",  # eval (bandit B307)
    ("ruff", "S311"): "CWE-330",  # non-cryptographic random (bandit B311)
    ("ruff", "S324"): "CWE-327",  # weak hash (bandit B324)
    ("ruff", "S501"): "CWE-295",  # verify=False (bandit B501)
    ("ruff", "S506"): "CWE-20",  # yaml.load (bandit B506)
    ("ruff", "S602"): "CWE-78",  # subprocess with shell=True (bandit B602)
    ("ruff", "S603"): "CWE-78",  # subprocess without shell (bandit B603)
    ("ruff", "S605"): "CWE-78",  # os.system and friends (bandit B605)
    ("ruff", "S607"): "CWE-78",  # partial executable path (bandit B607)
    ("ruff", "S608"): "CWE-89",  # SQL built from strings (bandit B608, semgrep python-sql-string-formatting)
}

# A narrower CWE -> the one other tools report for the same flaw.
CWE_ALIASES: dict[str, str] = {
    "CWE-259": "CWE-798",  # hard-coded password is a kind of hard-coded credentials (detect-secrets, semgrep)
    "CWE-95": "CWE-94",  # eval injection is code injection
}

_CWE = re.compile(r"CWE-?(\d+)", re.IGNORECASE)


def canonical_cwe(cwe: str | None) -> str | None:
    """`CWE-<n>` from the forms tools write (`CWE-89`, `cwe-89: SQL…`, `89`), aliases folded; None if none."""
    if not cwe:
        return None
    match = _CWE.search(cwe) or re.fullmatch(r"\s*(\d+)\s*", cwe)
    if match is None:
        return None
    named = f"CWE-{int(match.group(1))}"
    return CWE_ALIASES.get(named, named)


def weakness(tool: str, rule_id: str, cwe: str | None) -> str:
    """What a finding means, so that other tools' findings of the same flaw compare equal."""
    return RULE_WEAKNESSES.get((tool, rule_id)) or canonical_cwe(cwe) or f"{tool}:{rule_id}"


def group_key(path: str | None, weakness_name: str, first_line: int | None) -> str:
    material = "\x1f".join((path or "", weakness_name, "" if first_line is None else str(first_line)))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def group_keys(findings: Sequence[Finding]) -> list[str]:
    """The issue group key of each finding, in the order given."""
    by_place: dict[tuple[str | None, str], list[int]] = {}
    for index, finding in enumerate(findings):
        by_place.setdefault((finding.path, weakness(finding.tool, finding.rule_id, finding.cwe)), []).append(
            index
        )
    keys = [""] * len(findings)
    for (path, weakness_name), members in by_place.items():
        with_line = sorted(
            (i for i in members if findings[i].line is not None), key=lambda i: _span(findings[i])
        )
        for i in members:
            if findings[i].line is None:
                keys[i] = group_key(path, weakness_name, None)
        cluster: list[int] = []
        cluster_end = 0
        for i in with_line:
            start, end = _span(findings[i])
            if cluster and start > cluster_end:
                _assign(keys, cluster, group_key(path, weakness_name, _span(findings[cluster[0]])[0]))
                cluster = []
            cluster_end = max(cluster_end, end) if cluster else end
            cluster.append(i)
        if cluster:
            _assign(keys, cluster, group_key(path, weakness_name, _span(findings[cluster[0]])[0]))
    return keys


def _span(finding: Finding) -> tuple[int, int]:
    start = finding.line or 0
    return start, max(start, finding.end_line or start)


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
