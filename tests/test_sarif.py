"""SARIF that code-scanning tools place correctly: rule descriptions and help links, a base for app-relative paths,
Assay's fingerprints, and security-severity on security rules only."""

from __future__ import annotations

from shared.results.findings import Finding, ToolRun, fingerprint
from shared.results.sarif import APP_ROOT, app_root_of, sarif_for

BANDIT = Finding(
    tool="bandit", rule_id="B608", severity="medium", category="security", cwe="CWE-89",
    message="Possible SQL injection vector through string-based query construction.",
    path="backend/app.py", line=12, column=5, end_line=13,
    help_url="https://bandit.readthedocs.io/en/latest/plugins/b608_hardcoded_sql_expressions.html",
    fingerprint=fingerprint("bandit", "B608", "backend/app.py", "q = f'select {x}'"),
    extra={"test_name": "hardcoded_sql_expressions"},
)  # fmt: skip
RUFF = Finding(
    tool="ruff", rule_id="F401", severity="low", category="quality", message="`os` imported but unused",
    path="backend/app.py", line=1, fingerprint=fingerprint("ruff", "F401", "backend/app.py", "import os"),
)  # fmt: skip
HEADERS = Finding(
    tool="security-headers", rule_id="missing-csp", severity="medium", category="http",
    message="No Content-Security-Policy header", path="http://127.0.0.1:5000/",
    fingerprint=fingerprint("security-headers", "missing-csp", "http://127.0.0.1:5000/", "", "csp"),
)  # fmt: skip


def test_runs_place_paths_describe_rules_and_rank_security_rules() -> None:
    runs = [
        ToolRun(tool=tool, status="success", version="1.0") for tool in ("bandit", "ruff", "security-headers")
    ]

    log = sarif_for(runs, [BANDIT, RUFF, HEADERS], app_root_of("openai_codex-mini", 3))

    by_tool = {run["tool"]["driver"]["name"]: run for run in log["runs"]}
    assert [run["originalUriBaseIds"][APP_ROOT]["uri"] for run in log["runs"]] == [
        "openai_codex-mini/app3/"
    ] * 3
    [bandit_rule] = by_tool["bandit"]["tool"]["driver"]["rules"]
    assert bandit_rule["shortDescription"] == {"text": "hardcoded_sql_expressions"}
    assert bandit_rule["fullDescription"]["text"].startswith("Possible SQL injection")
    assert bandit_rule["helpUri"] == BANDIT.help_url and BANDIT.help_url in bandit_rule["help"]["text"]
    assert bandit_rule["properties"]["security-severity"] == "5.5"
    assert set(bandit_rule["properties"]["tags"]) == {"security", "CWE-89"}
    [ruff_rule] = by_tool["ruff"]["tool"]["driver"]["rules"]
    assert "security-severity" not in ruff_rule["properties"]  # not a security rule
    assert ruff_rule["shortDescription"] == {"text": "`os` imported but unused"}

    [result] = by_tool["bandit"]["results"]
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "backend/app.py", "uriBaseId": APP_ROOT}
    assert location["region"] == {"startLine": 12, "startColumn": 5, "endLine": 13}
    assert result["partialFingerprints"] == {"assayFingerprint/v1": BANDIT.fingerprint}
    [http] = by_tool["security-headers"]["results"]
    assert http["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "http://127.0.0.1:5000/"}
    assert (
        by_tool["security-headers"]["tool"]["driver"]["rules"][0]["properties"]["security-severity"] == "5.5"
    )
