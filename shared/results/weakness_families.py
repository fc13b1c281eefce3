"""Weakness families: the CWEs that name one kind of flaw, so that a study counts "SQL injection" once whichever
tool reported it and under whichever of its CWEs (CWE-89, CWE-564, CWE-943).

A finding's weakness comes from `shared.results.rule_table.weakness` (a rule's mapped CWE, else its own CWE, aliases
folded); its family is the entry of `FAMILIES` that lists that CWE. A CWE no family lists is a family of its own
(titled by its number), so nothing a tool reported disappears from a table; a weakness that is no CWE (`ruff:E501`)
has no family. The table is written from the CWE hierarchy (each family is a CWE class or category and the children
tools report for it) and the OWASP Top 10 groupings, not from any one tool's output.
"""

from __future__ import annotations

import functools
import re

import msgspec

from shared.results.rule_table import weakness


class Family(msgspec.Struct, frozen=True):
    """One kind of flaw: a stable id (used in addresses and CSV), a title, and the CWEs it covers."""

    id: str
    title: str
    cwes: tuple[str, ...]


FAMILIES: tuple[Family, ...] = (
    Family("sql-injection", "SQL and query injection", ("CWE-89", "CWE-564", "CWE-943")),
    Family("command-injection", "OS command injection", ("CWE-78", "CWE-77", "CWE-88")),
    Family(
        "code-injection",
        "Code and template injection",
        ("CWE-94", "CWE-95", "CWE-96", "CWE-917", "CWE-1336"),
    ),
    Family("other-injection", "LDAP, XPath and header injection", ("CWE-90", "CWE-643", "CWE-113", "CWE-93")),
    Family("xss", "Cross-site scripting", ("CWE-79", "CWE-80", "CWE-83", "CWE-87")),
    Family("path-traversal", "Path traversal", ("CWE-22", "CWE-23", "CWE-35", "CWE-36", "CWE-73")),
    Family("file-upload", "Unrestricted file upload", ("CWE-434",)),
    Family("deserialization", "Unsafe deserialization", ("CWE-502",)),
    Family("xxe", "XML external entities", ("CWE-611", "CWE-776")),
    Family("ssrf", "Server-side request forgery", ("CWE-918",)),
    Family("open-redirect", "Open redirect", ("CWE-601",)),
    Family("csrf", "Cross-site request forgery", ("CWE-352",)),
    Family(
        "authentication",
        "Broken authentication and sessions",
        (
            "CWE-287",
            "CWE-288",
            "CWE-306",
            "CWE-307",
            "CWE-345",
            "CWE-347",
            "CWE-384",
            "CWE-521",
            "CWE-522",
            "CWE-613",
            "CWE-620",
            "CWE-640",
        ),
    ),
    Family(
        "access-control",
        "Broken access control",
        ("CWE-284", "CWE-285", "CWE-425", "CWE-639", "CWE-862", "CWE-863", "CWE-915"),
    ),
    Family("credentials", "Hard-coded secrets", ("CWE-798", "CWE-259", "CWE-321", "CWE-547", "CWE-1392")),
    Family(
        "weak-crypto",
        "Weak cryptography and password storage",
        (
            "CWE-256",
            "CWE-257",
            "CWE-261",
            "CWE-312",
            "CWE-326",
            "CWE-327",
            "CWE-328",
            "CWE-759",
            "CWE-760",
            "CWE-916",
        ),
    ),  # fmt: skip
    Family("randomness", "Weak randomness", ("CWE-330", "CWE-331", "CWE-338")),
    Family(
        "information-exposure",
        "Information exposure and debug code",
        ("CWE-200", "CWE-209", "CWE-215", "CWE-489", "CWE-497", "CWE-532", "CWE-538", "CWE-548", "CWE-668"),
    ),
    Family(
        "transport",
        "Cleartext transport and certificates",
        ("CWE-295", "CWE-297", "CWE-311", "CWE-319", "CWE-523"),
    ),  # fmt: skip
    Family("cookies", "Cookie attributes", ("CWE-614", "CWE-1004", "CWE-1275", "CWE-315")),
    Family("cors", "Cross-origin resource sharing", ("CWE-942", "CWE-346")),
    Family("security-headers", "Missing protection headers", ("CWE-693", "CWE-1021", "CWE-16")),
    Family(
        "resource-exhaustion", "Resource exhaustion", ("CWE-400", "CWE-770", "CWE-799", "CWE-834", "CWE-1333")
    ),
    Family("exposed-interfaces", "Binding to all interfaces", ("CWE-605", "CWE-1327")),
    Family(
        "error-handling", "Error handling", ("CWE-390", "CWE-396", "CWE-397", "CWE-703", "CWE-754", "CWE-755")
    ),
    Family("temp-files", "Insecure temporary files", ("CWE-377", "CWE-378", "CWE-379")),
    Family("log-injection", "Log injection", ("CWE-117",)),
    Family(
        "vulnerable-dependencies",
        "Dependencies with known vulnerabilities",
        ("CWE-937", "CWE-1035", "CWE-1104", "CWE-1395"),
    ),
)

_BY_CWE: dict[str, Family] = {cwe: family for family in FAMILIES for cwe in family.cwes}
_BY_ID: dict[str, Family] = {family.id: family for family in FAMILIES}
_CWE = re.compile(r"CWE-\d+")


def family_of(weakness: str) -> Family | None:
    """The family of a weakness (`CWE-89` → SQL injection); a CWE no family lists is its own family; None for a
    weakness that is no CWE (a rule of one tool)."""
    if not _CWE.fullmatch(weakness):
        return None
    return _BY_CWE.get(weakness) or Family(weakness, weakness, (weakness,))


def family_by_id(family_id: str) -> Family | None:
    """The family of that id: one of FAMILIES, or `CWE-<n>` for a CWE no family lists; None for any other."""
    found = _BY_ID.get(family_id) or family_of(family_id)
    return found if found is not None and found.id == family_id else None


@functools.cache
def weakness_of(tool: str, rule_id: str, cwe: str | None) -> tuple[str, Family | None]:
    """A finding's weakness (shared/results/issue_groups) and its family, remembered: a study asks for the same few rules
    hundreds of thousands of times."""
    named = weakness(tool, rule_id, cwe)
    return named, family_of(named)
