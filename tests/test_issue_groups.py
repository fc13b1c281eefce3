"""Issue groups: one vulnerable line reported by several tools is one issue; the persister stores each finding's
group key, and the gateway answers the issues of a task with every raw finding kept and counts both ways."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import select

from services.persister.database import record_service
from shared.jetstream.natsd import EmbeddedNats
from shared.results.findings import Finding, Severity, fingerprint
from shared.results.issue_groups import group_key, group_keys
from shared.results.rule_table import canonical_cwe, weakness
from shared.store.database import create_engine, sessions
from shared.store.models import FindingRow
from shared.wire.messages import ServiceFinished
from shared.wire.protocol import ServiceResult
from shared.wire.tasks import TaskRef
from tests.support.gateway import (
    APP,
    MODEL,
    Gateway,
    gateway_for,
    gateway_settings,
    insert_task,
    migrate_database,
)

APP_PY = "backend/app.py"


def finding(
    tool: str,
    rule: str,
    line: int | None,
    *,
    end: int | None = None,
    cwe: str | None = None,
    severity: Severity = "medium",
    path: str = APP_PY,
) -> Finding:
    return Finding(
        tool=tool,
        rule_id=rule,
        severity=severity,
        message=f"{tool} {rule}",
        path=path,
        line=line,
        end_line=end,
        cwe=cwe,
        fingerprint=fingerprint(tool, rule, path, f"{rule}@{line}"),
    )


# One SQL injection on lines 9-11 seen by three tools, one hard-coded password seen by two, and findings that
# must stay apart: another weakness on the same line, the same weakness in another file or on a distant line.
SQL = [
    finding("bandit", "B608", 10, cwe="CWE-89", severity="medium"),
    finding("ruff", "S608", 10, end=11, severity="low"),
    finding("semgrep", "python-sql-string-formatting", 9, end=11, cwe="CWE-89", severity="high"),
]
PASSWORD = [
    finding("bandit", "B105", 3, cwe="CWE-259", severity="low"),
    finding("detect-secrets", "Secret Keyword", 3, cwe="CWE-798", severity="high"),
]
APART = [
    finding("ruff", "E501", 10),  # same line, another weakness
    finding("bandit", "B608", 10, cwe="CWE-89", path="backend/db.py"),  # same weakness, another file
    finding("ruff", "S608", 40),  # same weakness, a line far away
    finding("pip-audit", "PYSEC-1", None, path="backend/requirements.txt"),
]
FINDINGS = SQL + PASSWORD + APART


def test_weakness_uses_the_mapping_table_then_the_cwe_then_the_rule() -> None:
    assert weakness("ruff", "S608", None) == "CWE-89"
    assert weakness("bandit", "B608", "CWE-89") == "CWE-89"
    assert weakness("bandit", "B105", "CWE-259") == "CWE-798"  # folded into the hard-coded credentials CWE
    assert weakness("ruff", "E501", None) == "ruff:E501"
    assert [canonical_cwe(text) for text in ("cwe-89: SQL", "89", "CWE-0095", "none", None)] == [
        "CWE-89",
        "CWE-89",
        "CWE-94",
        None,
        None,
    ]


def test_findings_of_one_place_and_weakness_share_a_key_and_others_do_not() -> None:
    keys = group_keys(FINDINGS)

    sql, password = keys[0], keys[3]
    assert keys[:3] == [sql] * 3
    assert keys[3:5] == [password] * 2
    assert len(set(keys)) == 2 + len(APART)
    assert sql == group_key(APP_PY, "sql-injection", 9)  # the group starts at its first line, named by family
    assert password == group_key(APP_PY, "credentials", 3)


def test_one_flaw_under_related_weaknesses_is_one_group() -> None:
    """yaml.load as bandit's CWE-20 (mapped to deserialization) and semgrep's CWE-502; MD5 of a password as
    CWE-327 and CWE-916; a query built on one line and run two lines later (semgrep spans both)."""
    flaws = [
        finding("bandit", "B506", 12, cwe="CWE-20"),
        finding("semgrep", "python-unsafe-deserialization", 12, cwe="CWE-502", severity="critical"),
        finding("bandit", "B324", 20, cwe="CWE-327"),
        finding("semgrep", "python-password-fast-hash", 20, cwe="CWE-916"),
        finding("bandit", "B608", 30, cwe="CWE-89"),
        finding("semgrep", "python-sql-string-formatting", 30, end=32, cwe="CWE-89"),
        finding("bandit", "B608", 32, cwe="CWE-89"),
    ]
    keys = group_keys(flaws)
    assert keys[0] == keys[1] and keys[2] == keys[3] and keys[4] == keys[5] == keys[6]
    assert len(set(keys)) == 3


def test_each_missing_header_is_its_own_group_and_sites_of_one_long_line_stay_apart() -> None:
    url = "http://app/"
    headers = [
        finding("security-headers", f"missing-{name}", None, cwe="CWE-693", path=url)
        for name in ("content-security-policy", "x-content-type-options", "permissions-policy")
    ]
    assert len(set(group_keys(headers))) == 3

    def at(tool: str, rule: str, column: int) -> Finding:
        return msgspec.structs.replace(
            finding(tool, rule, 1, path="static/bundle.js", cwe="CWE-95"), column=column
        )

    minified = [at("eslint", "no-eval", 120), at("semgrep", "js-eval", 122), at("eslint", "no-eval", 9000)]
    keys = group_keys(minified)
    assert keys[0] == keys[1] != keys[2]


def test_keys_do_not_depend_on_order_or_on_which_tools_found_the_issue() -> None:
    expected = dict(zip((f.fingerprint for f in FINDINGS), group_keys(FINDINGS), strict=True))
    shuffled = FINDINGS.copy()
    random.Random(7).shuffle(shuffled)

    assert dict(zip((f.fingerprint for f in shuffled), group_keys(shuffled), strict=True)) == expected
    assert group_keys([SQL[2]]) == [expected[SQL[2].fingerprint]]  # semgrep alone: the same issue key


def test_overlap_is_transitive_along_a_chain_of_ranges() -> None:
    chain = [
        finding("a", "X", 1, end=3),
        finding("b", "X", 3, end=6),
        finding("c", "X", 6),
        finding("d", "X", 8),
    ]
    chain = [finding(f.tool, "R", f.line, end=f.end_line, cwe="CWE-1") for f in chain]

    keys = group_keys(chain)

    assert keys[0] == keys[1] == keys[2] != keys[3]


@pytest.fixture
async def gateway(tmp_path: Path, nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Gateway]:
    async with gateway_for(
        gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url))
    ) as gw:
        yield gw


async def test_persister_stores_group_keys_and_the_gateway_answers_issues_counted_both_ways(
    gateway: Gateway, database_url: str
) -> None:
    task_id = "task_0000000000f1"
    await insert_task(database_url, task_id)  # three findings of its own (bandit B105, ruff F401, ruff E711)
    engine = create_engine(database_url)
    event = ServiceFinished(
        task=TaskRef(id=task_id, model_slug=MODEL, app_number=APP, analysis_type="static"),
        service="dynamic",
        status="success",
    )
    # and two findings in a vendored library: kept, but no issue of the app's
    library = [
        msgspec.structs.replace(finding("eslint", "no-eval", line, path="static/lib.js"), origin="vendored")
        for line in (40, 900)
    ]
    await record_service(
        sessions(engine),
        event,
        ServiceResult(service="dynamic", status="success", findings=FINDINGS + library),
        None,
    )
    async with sessions(engine)() as session:
        stored = (await session.scalars(select(FindingRow).where(FindingRow.service == "dynamic"))).all()
    await engine.dispose()
    assert [row.issue_group for row in sorted(stored, key=lambda row: row.id)] == group_keys(
        FINDINGS + library
    )

    issues = (await gateway.http.get(f"/api/tasks/{task_id}/issues")).json()
    detail = (await gateway.http.get(f"/api/tasks/{task_id}")).json()

    assert detail["findings_count"] == 3 + len(FINDINGS) + 2  # every raw finding kept
    assert issues["findings_total"] == 3 + len(FINDINGS)  # the issues of the app's own code
    assert issues["left_out"] == {"vendored": 2} and detail["findings_left_out"] == {"vendored": 2}
    everything = (await gateway.http.get(f"/api/tasks/{task_id}/issues", params={"origin": "all"})).json()
    assert everything["total"] == issues["total"] + 2 and everything["left_out"] == {}
    assert (
        issues["total"] == detail["issues_count"] == 3 + 2 + len(APART)
    )  # rows written before groups: one each
    assert {issue["severity"] for issue in issues["issues"][:3]} == {"high"}  # most severe first
    (first,) = [issue for issue in issues["issues"] if issue["weakness"] == "CWE-89" and issue["line"] == 9]
    assert first["severity"] == "high"
    assert (first["weakness"], first["path"], first["line"], first["end_line"]) == ("CWE-89", APP_PY, 9, 11)
    assert first["tools"] == ["bandit", "ruff", "semgrep"]
    assert first["findings_count"] == 3 == len(first["findings"])
    assert detail["issue_severity_breakdown"] == {"critical": 0, "high": 3, "medium": 4, "low": 2, "info": 0}
    assert sum(detail["severity_breakdown"].values()) == detail["findings_count"]

    only_ruff = (await gateway.http.get(f"/api/tasks/{task_id}/issues", params={"tool": "ruff"})).json()
    assert {issue["group_key"] for issue in only_ruff["issues"]} >= {first["group_key"]}
    assert all("ruff" in issue["tools"] for issue in only_ruff["issues"])
    assert (await gateway.http.get("/api/tasks/task_0000000000f9/issues")).status_code == 404
