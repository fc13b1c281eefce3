"""The one table of what a tool's rule means: its weakness (CWE), its severity on Assay's scale and whether it is a
security finding at all, for the rules whose tool says nothing, says it differently from the other tools that
report the same flaw, or rates it on another scale.

Reviewed against the CWE entries and OWASP's ratings, not against any one app:

- **critical** is code or command execution, SQL injection and file reads reachable from a request. Pattern tools
  that cannot see where a value comes from (bandit, ruff) do not rate anything critical: their `pickle.loads` is
  `high`; Assay's semgrep taint rules, which see the request, rate the same call `critical` (rules/*.yml).
- **info** is an audit note, not a flaw: "subprocess imported", "subprocess called without a shell", "pickle
  imported". Counted nowhere a score is made.
- **style and simplification rules are never security**: ruff's flake8-bandit rules are `S` followed by digits;
  `SIM` (flake8-simplify) is quality, whatever its first letter.

A rule the table does not list keeps what its tool said (bandit's own severity and CWE, semgrep's rule metadata).
`weakness()` is how a finding's weakness is named everywhere (issue groups, weakness families, reports).
"""

from __future__ import annotations

import re

import msgspec

from shared.results.findings import Severity


class Rule(msgspec.Struct, frozen=True):
    """What one rule of one tool means; None keeps what the tool said."""

    cwe: str | None = None
    severity: Severity | None = None
    security: bool | None = None


RULES: dict[tuple[str, str], Rule] = {
    # bandit: its CWE where it differs from what the flaw is (eval is code injection, yaml.load deserialization)
    ("bandit", "B102"): Rule("CWE-95", "high"),  # exec
    ("bandit", "B201"): Rule(
        "CWE-489", "high"
    ),  # Flask debug=True: bandit says CWE-94, it is active debug code
    ("bandit", "B301"): Rule("CWE-502", "high"),  # pickle.loads
    ("bandit", "B307"): Rule("CWE-95", "high"),  # eval
    ("bandit", "B506"): Rule("CWE-502", "high"),  # yaml.load: bandit says CWE-20
    ("bandit", "B602"): Rule("CWE-78", "high"),  # subprocess with shell=True
    ("bandit", "B605"): Rule("CWE-78", "high"),  # os.system
    ("bandit", "B608"): Rule("CWE-89", "high"),  # SQL built from strings
    ("bandit", "B403"): Rule("CWE-502", "info"),  # import pickle: an audit note
    ("bandit", "B404"): Rule("CWE-78", "info"),  # import subprocess: an audit note
    ("bandit", "B603"): Rule("CWE-78", "info"),  # subprocess without a shell: an audit note
    ("bandit", "B607"): Rule("CWE-78", "info"),  # partial executable path: an audit note
    # ruff's flake8-bandit rules mirror bandit's; ruff gives no CWE
    ("ruff", "S101"): Rule("CWE-703", "low"),  # assert used
    ("ruff", "S102"): Rule("CWE-95", "high"),  # exec
    ("ruff", "S104"): Rule("CWE-605", "medium"),  # binding to all interfaces
    ("ruff", "S105"): Rule("CWE-798", "medium"),  # hard-coded password string
    ("ruff", "S106"): Rule("CWE-798", "medium"),  # hard-coded password argument
    ("ruff", "S107"): Rule("CWE-798", "medium"),  # hard-coded password default
    ("ruff", "S108"): Rule("CWE-377", "medium"),  # insecure temporary file
    ("ruff", "S110"): Rule("CWE-703", "low"),  # try-except-pass
    ("ruff", "S112"): Rule("CWE-703", "low"),  # try-except-continue
    ("ruff", "S113"): Rule("CWE-400", "medium"),  # request without timeout
    ("ruff", "S201"): Rule("CWE-489", "high"),  # Flask debug=True
    ("ruff", "S301"): Rule("CWE-502", "high"),  # pickle
    ("ruff", "S307"): Rule("CWE-95", "high"),  # eval
    ("ruff", "S311"): Rule("CWE-330", "low"),  # non-cryptographic random
    ("ruff", "S324"): Rule("CWE-327", "medium"),  # weak hash
    ("ruff", "S501"): Rule("CWE-295", "high"),  # verify=False
    ("ruff", "S506"): Rule("CWE-502", "high"),  # yaml.load
    ("ruff", "S602"): Rule("CWE-78", "high"),  # subprocess with shell=True
    ("ruff", "S603"): Rule("CWE-78", "info"),  # subprocess without a shell: an audit note
    ("ruff", "S605"): Rule("CWE-78", "high"),  # os.system and friends
    ("ruff", "S607"): Rule("CWE-78", "info"),  # partial executable path: an audit note
    ("ruff", "S608"): Rule("CWE-89", "high"),  # SQL built from strings
    ("ruff", "S701"): Rule("CWE-79", "medium"),  # jinja2 autoescape off
    ("ruff", "S704"): Rule("CWE-79", "medium"),  # Markup of a non-literal
    # eslint's core rules that are security findings
    ("eslint", "no-eval"): Rule("CWE-95", "high", True),
    ("eslint", "no-implied-eval"): Rule("CWE-95", "high", True),
    ("eslint", "no-new-func"): Rule("CWE-95", "high", True),
    ("eslint", "no-script-url"): Rule("CWE-79", "medium", True),
    # the maintained rule sets eslint runs beside Assay's semgrep rules (services/analyzers/static/node)
    ("eslint", "no-unsanitized/method"): Rule(
        "CWE-79", "medium", True
    ),  # insertAdjacentHTML, document.write …
    ("eslint", "no-unsanitized/property"): Rule(
        "CWE-79", "medium", True
    ),  # innerHTML/outerHTML of non-constants
    ("eslint", "security/detect-child-process"): Rule("CWE-78", "medium", True),
    ("eslint", "security/detect-eval-with-expression"): Rule("CWE-95", "high", True),
    ("eslint", "security/detect-disable-mustache-escape"): Rule("CWE-79", "high", True),
    ("eslint", "security/detect-no-csrf-before-method-override"): Rule("CWE-352", "medium", True),
    ("eslint", "security/detect-unsafe-regex"): Rule("CWE-1333", "medium", True),
    ("eslint", "security/detect-possible-timing-attacks"): Rule("CWE-208", "low", True),
    ("eslint", "security/detect-pseudoRandomBytes"): Rule("CWE-338", "medium", True),
    ("eslint", "security/detect-non-literal-require"): Rule("CWE-706", "low", True),
    ("eslint", "security/detect-bidi-characters"): Rule("CWE-1007", "high", True),
    ("eslint", "security/detect-new-buffer"): Rule("CWE-119", "low", True),
    ("eslint", "security/detect-buffer-noassert"): Rule("CWE-119", "low", True),
    # any file name that is not a literal, flaw or not (three of four on the corpus were constant folders): a note
    ("eslint", "security/detect-non-literal-fs-filename"): Rule("CWE-22", "info", True),
}

# A narrower CWE -> the one other tools report for the same flaw.
CWE_ALIASES: dict[str, str] = {
    "CWE-259": "CWE-798",  # hard-coded password is a kind of hard-coded credentials (detect-secrets, semgrep)
    "CWE-1392": "CWE-798",  # default credentials are hard-coded credentials shipped as the default
    "CWE-95": "CWE-94",  # eval injection is code injection
}

_CWE = re.compile(r"CWE-?(\d+)", re.IGNORECASE)
_RUFF_SECURITY = re.compile(r"S\d+")  # flake8-bandit; SIM (flake8-simplify) and the rest are quality


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
    """What a finding means, so that other tools' findings of the same flaw compare equal: the table's CWE, else
    the finding's own, else `<tool>:<rule_id>` (only that rule of that tool matches)."""
    return canonical_cwe(rule_cwe(tool, rule_id, cwe)) or f"{tool}:{rule_id}"


def rule_cwe(tool: str, rule_id: str, cwe: str | None) -> str | None:
    """The CWE a finding is stored with: the table's for the rule, else what the tool said."""
    entry = RULES.get((tool, rule_id))
    return entry.cwe if entry and entry.cwe else cwe


def rated(tool: str, rule_id: str, severity: Severity) -> Severity:
    """The rule's severity on Assay's scale: the table's, else what the tool said (mapped by its parser)."""
    entry = RULES.get((tool, rule_id))
    return entry.severity if entry and entry.severity else severity


def is_security(tool: str, rule_id: str, default: bool) -> bool:
    """Whether the rule reports a security weakness: the table's answer, ruff's `S<digits>`, else `default`."""
    entry = RULES.get((tool, rule_id))
    if entry and entry.security is not None:
        return entry.security
    if tool == "ruff":
        return _RUFF_SECURITY.fullmatch(rule_id) is not None
    return default
