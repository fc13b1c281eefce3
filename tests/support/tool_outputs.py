"""Each static tool's own output, counted by rule id with parsers written here, independently of the tool modules.

Tests re-run a tool's recorded command and compare these counts with what Assay reported or persisted.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path


def bandit_counts(out: str) -> Counter[str]:
    return Counter(issue["test_id"] for issue in json.loads(out)["results"])


def ruff_counts(out: str) -> Counter[str]:
    return Counter(item["code"] for item in json.loads(out))


def pylint_counts(out: str) -> Counter[str]:
    return Counter(message["symbol"] for message in json.loads(out)["messages"])


def mypy_counts(out: str) -> Counter[str]:
    items = [json.loads(line) for line in out.splitlines() if line.strip()]
    return Counter(item["code"] or ("note" if item["severity"] == "note" else "misc") for item in items)


def vulture_counts(out: str) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for line in out.splitlines():
        match = re.match(r"^.+?:\d+: (.+) \(\d+% confidence", line)
        # "unused import 'os'" → unused-import, "unreachable code after 'return'" → unreachable-code
        if match:
            words = re.sub(r"'[^']*'", " ", match[1]).split()
            kinds["-".join(word for word in words if word != "after")] += 1
    return kinds


def radon_counts(out: str) -> Counter[str]:
    return Counter(
        f"complexity-{block['rank']}"
        for blocks in json.loads(out).values()
        if isinstance(blocks, list)
        for block in blocks
        if block["type"] != "class" and block["rank"] in "DEF"
    )


def detect_secrets_counts(out: str) -> Counter[str]:
    return Counter(hit["type"] for hits in json.loads(out)["results"].values() for hit in hits)


def eslint_counts(out: str) -> Counter[str]:
    return Counter(
        message["ruleId"] or "parse-error" for file in json.loads(out) for message in file["messages"]
    )


def semgrep_counts(out: str) -> Counter[str]:
    return Counter(result["check_id"].rsplit(".", 1)[-1] for result in json.loads(out)["results"])


def pip_audit_counts(out: str) -> Counter[str]:
    return Counter(
        vuln["id"] for dependency in json.loads(out)["dependencies"] for vuln in dependency.get("vulns", [])
    )


def npm_audit_counts(out: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for package in json.loads(out).get("vulnerabilities", {}).values():
        advisories = [via for via in package["via"] if isinstance(via, dict)]
        for advisory in advisories:
            last = advisory.get("url", "").rstrip("/").rsplit("/", 1)[-1]
            counts[last if last.startswith("GHSA-") else f"npm-{advisory.get('source')}"] += 1
        if not advisories:
            counts["vulnerable-dependency"] += 1
    return counts


COUNTERS: dict[str, Callable[[str], Counter[str]]] = {
    "bandit": bandit_counts,
    "ruff": ruff_counts,
    "pylint": pylint_counts,
    "mypy": mypy_counts,
    "vulture": vulture_counts,
    "radon": radon_counts,
    "detect-secrets": detect_secrets_counts,
    "eslint": eslint_counts,
    "semgrep": semgrep_counts,
    "pip-audit": pip_audit_counts,
    "npm-audit": npm_audit_counts,
}


def direct_counts_by_rule(tool: str, command: list[str], cwd: Path) -> dict[str, int]:
    """Run `command` (a tool run's argv) in `cwd`, as the analyzer did, and count its findings by rule id."""
    rerun = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=180, check=False)
    return dict(COUNTERS[tool](rerun.stdout))
