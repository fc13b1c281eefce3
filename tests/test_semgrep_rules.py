"""Assay's own semgrep rules, checked by the real semgrep's `--test`: every rule of every rule file reports each line
its cases mark `ruleid:` and none they mark `ok:` (so a filter semgrep ignores, like a misplaced metavariable-regex,
fails here), every rule has both kinds of case, and no rule file has an error."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.analyzers.static.tools.semgrep import RULES
from tests.support.static import REPO

CASES = REPO / "tests" / "semgrep_rules"
SEMGREP = REPO / ".venv" / "bin" / "semgrep"
_ANNOTATION = re.compile(r"\b(ruleid|ok):\s*([\w-]+(?:\s*,\s*[\w-]+)*)")


def rule_ids() -> dict[str, str]:
    """Every rule id of every rule file, with its file's stem (the name of its cases file)."""
    return {
        rule["id"]: path.stem
        for path in sorted(RULES.glob("*.yml"))
        for rule in yaml.safe_load(path.read_text())["rules"]
    }


def annotated(kind: str) -> set[str]:
    found: set[str] = set()
    for path in CASES.iterdir():
        for match in _ANNOTATION.finditer(path.read_text()):
            if match.group(1) == kind:
                found.update(name.strip() for name in match.group(2).split(","))
    return found


def rule_test(rules: Path, cases: Path) -> dict[str, Any]:
    """semgrep's own `--test` report for a folder of rule files and a folder of their cases."""
    if not SEMGREP.exists():
        pytest.skip("semgrep is not installed in .venv (make install)")
    argv = [
        str(SEMGREP),
        "--test",
        "--json",
        "--metrics=off",
        "--disable-version-check",
        "--config",
        str(rules),
    ]
    done = subprocess.run([*argv, str(cases)], capture_output=True, text=True, timeout=600, check=False)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def problems(report: dict[str, Any]) -> list[str]:
    """Everything `--test` holds against the rules: files with errors or no cases, and each failing rule."""
    found = [f"error in {item['filename']}" for item in report["config_with_errors"]]
    found += [f"no cases for {name}" for name in report["config_missing_tests"]]
    for per_file in report["results"].values():
        found += [
            f"{rule}: {check['matches']}" for rule, check in per_file["checks"].items() if not check["passed"]
        ]
    return found


def test_every_rule_matches_its_cases_and_stays_silent_on_the_safe_ones() -> None:
    report = rule_test(RULES, CASES)
    assert problems(report) == []
    tested = {rule for per_file in report["results"].values() for rule in per_file["checks"]}
    assert tested == set(rule_ids()), "a rule without cases is not tested"


def test_every_rule_has_code_it_must_match_and_code_it_must_not() -> None:
    ids = set(rule_ids())
    assert ids - annotated("ruleid") == set()
    assert ids - annotated("ok") == set()


def test_a_filter_out_of_place_fails_the_rule_test(tmp_path: Path) -> None:
    """The old mistake: a metavariable-regex beside `pattern-either` instead of inside `patterns` is no filter
    (a plain scan ignores it and reports the log line's f-string), and `--test` does not pass it."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "cases").mkdir()
    (tmp_path / "rules" / "sql.yml").write_text(
        """rules:
  - id: sql
    languages: [python]
    severity: HIGH
    message: sql
    pattern-either:
      - pattern: $CUR.$EXEC(f"...", ...)
    metavariable-regex:
      metavariable: $EXEC
      regex: ^execute$
"""
    )
    (tmp_path / "cases" / "sql.py").write_text(
        'def f(cursor, log, term):\n    # ruleid: sql\n    cursor.execute(f"SELECT {term}")\n'
        '    # ok: sql\n    log.info(f"searched {term}")\n'
    )
    assert problems(rule_test(tmp_path / "rules", tmp_path / "cases")) != []
