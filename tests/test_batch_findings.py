"""Finding a batch again and reading it at once, over a served gateway, a real nats-server, a real SQLite file and the
real persister (in-process): `GET /api/batches` and `assay batch list` (newest first, with counts), the batch filter
of `GET /api/tasks` and `assay tasks --batch`, a batch's waived rules (refused when malformed, carried to every
task), and every finding of a batch in one streamed answer (`GET /api/batches/{id}/findings`, JSON lines and CSV;
`assay batch findings`)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from shared.results.findings import Exchange, Finding, Proof, fingerprint
from shared.wire.messages import ServiceFinished, TaskCompleted, TaskStarted
from shared.wire.protocol import ServiceResult
from shared.wire.tasks import TaskRef
from tests import test_batches
from tests.support.gateway import MODEL, Gateway, run_cli
from tests.support.persister import Harness
from tests.test_batches import OTHER, recorded

# The gateway, persister and apps of tests/test_batches.py, shared as they are.
gateway, persister = test_batches.gateway, test_batches.persister


async def queued(gateway: Gateway, persister: Harness, **body: Any) -> dict[str, Any]:
    response = await gateway.http.post("/api/batches", json=body)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    await recorded(persister, answer["task_ids"])
    return answer


async def test_batches_are_listed_newest_first_with_counts_and_their_tasks_found_by_batch(
    gateway: Gateway, persister: Harness
) -> None:
    first = await queued(gateway, persister, models=[OTHER], analysis_types=["static"])
    second = await queued(
        gateway, persister, models=[MODEL, OTHER], apps=[1], analysis_types=["static", "security"],
        waived_rules=["CWE-605", "bandit:B104"],
    )  # fmt: skip

    page = (await gateway.http.get("/api/batches")).json()
    assert [batch["batch_id"] for batch in page["batches"]] == [second["batch_id"], first["batch_id"]]
    assert page["total"] == 2
    newest, oldest = page["batches"]
    assert (newest["total"], newest["done"], newest["finished"]) == (4, 0, False)
    assert newest["by_status"]["pending"] == 4
    assert newest["models"] == sorted([MODEL, OTHER]) and newest["analysis_types"] == ["security", "static"]
    assert newest["waived_rules"] == ["CWE-605", "bandit:B104"]
    assert oldest["models"] == [OTHER] and oldest["total"] == 2 and oldest["waived_rules"] == []
    assert (await gateway.http.get("/api/batches", params={"limit": 1, "offset": 1})).json()["batches"] == [
        oldest
    ]

    listed = (await gateway.http.get("/api/tasks", params={"batch": first["batch_id"]})).json()
    assert sorted(task["task_id"] for task in listed["tasks"]) == sorted(first["task_ids"])
    assert {task["batch_id"] for task in listed["tasks"]} == {first["batch_id"]}
    refused = await gateway.http.get("/api/tasks", params={"batch": "batch_nope"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "batch"
    detail = (await gateway.http.get(f"/api/tasks/{second['task_ids'][0]}")).json()
    assert detail["batch_id"] == second["batch_id"]
    assert detail["waived_rules"] == ["CWE-605", "bandit:B104"]
    progress = (await gateway.http.get(f"/api/batches/{second['batch_id']}")).json()
    assert progress["waived_rules"] == ["CWE-605", "bandit:B104"]

    code, out, err = await run_cli(gateway, "batch", "list")
    assert code == 0, err
    assert out.index(second["batch_id"]) < out.index(first["batch_id"])
    assert "2 of 2 batches" in out
    code, out, err = await run_cli(gateway, "tasks", "--batch", first["batch_id"], "--json")
    assert code == 0, err
    assert sorted(task["task_id"] for task in json.loads(out)["tasks"]) == sorted(first["task_ids"])


async def test_a_malformed_or_unknown_waiver_is_refused_naming_the_field(gateway: Gateway) -> None:
    for waived in (["nosuchtool:X1"], ["not a rule"], ["CWE-"], ["bandit:B1"] * 65):
        response = await gateway.http.post(
            "/api/batches", json={"models": [OTHER], "analysis_types": ["static"], "waived_rules": waived}
        )
        assert response.status_code == 422, (waived, response.text)
        assert response.json()["errors"][0]["field"].startswith("waived_rules"), response.text
    assert (await gateway.http.get("/api/batches")).json()["batches"] == []


def finding_of(tool: str, rule: str, line: int, cwe: str | None, proof: Proof | None = None) -> Finding:
    return Finding(
        tool=tool,
        rule_id=rule,
        severity="high",
        message=f'{rule}, line {line}: a message, with a comma and "quotes"',
        path="backend/app.py",
        line=line,
        cwe=cwe,
        fingerprint=fingerprint(tool, rule, "backend/app.py", f"line {line}"),
        proof=proof,
    )


async def finish(persister: Harness, task: dict[str, Any], findings: list[Finding]) -> None:
    ref = TaskRef(
        id=task["task_id"],
        model_slug=task["model_slug"],
        app_number=task["app_number"],
        analysis_type=task["analysis_type"],
    )
    result = ServiceResult(service="static", status="success", findings=findings)
    await persister.publish_event(TaskStarted(task=ref, services=["static"]))
    await persister.publish_event(
        ServiceFinished(task=ref, service="static", status="success", result=result)
    )
    await persister.publish_event(TaskCompleted(task=ref, status="completed", services=["static"]))
    await persister.wait_status(ref.id, "completed")


async def test_every_finding_of_a_batch_is_exported_at_once_as_json_lines_and_csv(
    gateway: Gateway, persister: Harness, tmp_path: Path
) -> None:
    batch = await queued(
        gateway, persister, models=[OTHER], analysis_types=["static"], waived_rules=["CWE-605"]
    )
    proof = Proof(
        exchanges=[Exchange(method="GET", path="/q?id=1'", status=500)],
        evidence="syntax",
        why="the quote broke it",
    )
    per_task = {
        batch["tasks"][0]["task_id"]: [
            finding_of("bandit", "B608", 10, "CWE-89", proof),
            finding_of("bandit", "B104", 20, "CWE-605"),
        ],
        batch["tasks"][1]["task_id"]: [finding_of("ruff", "S608", line, None) for line in range(1, 1502)],
    }
    for task in batch["tasks"]:
        await finish(persister, task, per_task[task["task_id"]])

    answer = await gateway.http.get(f"/api/batches/{batch['batch_id']}/findings")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert len(lines) == 2 + 1501  # across a page boundary (1,000 rows)
    assert {line["batch_id"] for line in lines} == {batch["batch_id"]}
    by_rule = {line["rule_id"]: line for line in lines}
    sql = by_rule["B608"]
    assert (sql["model_slug"], sql["task_status"], sql["weakness"], sql["family"]) == (
        OTHER, "completed", "CWE-89", "sql-injection"
    )  # fmt: skip
    assert sql["confirmed"] is True and sql["proof"]["why"] == "the quote broke it" and sql["waived"] is False
    assert by_rule["B104"]["waived"] is True and by_rule["B104"]["family"] == "exposed-interfaces"
    assert by_rule["S608"]["weakness"] == "CWE-89" and by_rule["S608"]["confirmed"] is False
    assert sorted(line["line"] for line in lines if line["rule_id"] == "S608") == list(range(1, 1502))

    as_csv = await gateway.http.get(f"/api/batches/{batch['batch_id']}/findings", params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == len(lines)
    assert [(row["task_id"], row["rule_id"], row["line"]) for row in rows] == [
        (line["task_id"], line["rule_id"], str(line["line"])) for line in lines
    ]
    assert next(row for row in rows if row["rule_id"] == "B608")["message"] == sql["message"]
    assert json.loads(next(row for row in rows if row["rule_id"] == "B608")["proof"]) == sql["proof"]

    unknown = await gateway.http.get(f"/api/batches/{batch['batch_id']}/findings", params={"format": "xml"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "format"
    assert (await gateway.http.get("/api/batches/batch_000000000000/findings")).status_code == 404

    target = tmp_path / "findings.csv"
    code, _out, err = await run_cli(
        gateway, "batch", "findings", batch["batch_id"], "--format", "csv", "--output", str(target)
    )
    assert code == 0, err
    assert target.read_text() == as_csv.text
    code, out, err = await run_cli(gateway, "batch", "findings", batch["batch_id"])
    assert code == 0 and [json.loads(line) for line in out.splitlines()] == lines
