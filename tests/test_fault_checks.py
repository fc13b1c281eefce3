"""The fault suite's judge on runs made up to be wrong: each kind of loss and duplicate it must catch is caught,
and a clean run passes (so a green fault suite means what its table says). The differences between database and
folders are `assay fsck`'s, tested with it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.support.faults.records import Rows, TaskRow, result_folders
from tests.support.faults.verdict import judge

TASK = "task_0123456789ab"
FOLDER = "fault/app1/task_static_0123456789ab_20261130T120000Z"


def write_result(results: Path, relative: str, task_id: str, findings: int) -> Path:
    """A result folder as the persister writes one: the primary document, a service file, the manifest."""
    folder = results / relative
    (folder / "services").mkdir(parents=True)
    primary = f"fault_app1_{task_id}.json"
    document = {"summary": {"total_findings": findings}, "results": {"findings": [{}] * findings}}
    files = {primary: json.dumps(document).encode(), "services/static.json": b"{}"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    listed = [
        {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in files.items()
    ]
    manifest = {"task_id": task_id, "primary_result": primary, "files": listed}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def finished_rows(findings: int = 5) -> Rows:
    row = TaskRow(TASK, "fault", 1, "completed", None, FOLDER, findings)
    return Rows(tasks={TASK: row}, finding_rows={TASK: findings}, tool_run_findings={TASK: findings})


@pytest.fixture
def results(tmp_path: Path) -> Path:
    write_result(tmp_path, FOLDER, TASK, 5)
    return tmp_path


def test_a_clean_run_has_nothing_lost_duplicated_or_in_disagreement(results: Path) -> None:
    verdict = judge([TASK], finished_rows(), result_folders(results), {TASK: ["completed"]}, {})
    assert (verdict.submitted, verdict.terminal, verdict.lost) == (1, 1, [])
    assert verdict.duplicated == {} and verdict.disagreements == {}


def test_an_accepted_task_without_a_terminal_row_is_lost(results: Path) -> None:
    rows = finished_rows()
    rows.tasks[TASK] = TaskRow(TASK, "fault", 1, "running", None, None, 0)
    verdict = judge([TASK, "task_ffffffffffff"], rows, {}, {}, {})
    assert verdict.lost == sorted([TASK, "task_ffffffffffff"]) and verdict.terminal == 0


def test_two_folders_extra_findings_two_terminal_events_and_an_unasked_row_are_duplicates(
    results: Path,
) -> None:
    write_result(results, "fault/app1/task_static_0123456789ab_20261130T120001Z", TASK, 5)
    rows = finished_rows()
    rows.finding_rows[TASK] = 10
    rows.terminal_applied[TASK] = 2
    rows.tasks["task_bbbbbbbbbbbb"] = TaskRow("task_bbbbbbbbbbbb", "fault", 1, "pending", None, None, 0)
    verdict = judge([TASK, TASK], rows, result_folders(results), {TASK: ["completed", "failed"]}, {})
    assert verdict.duplicated[TASK] == [
        "accepted 2 times",
        "2 result folders",
        "10 finding rows for 5 findings its tool runs reported",
        "2 terminal events on the stream (completed, failed)",
        "2 terminal events applied",
    ]
    assert verdict.duplicated["task_bbbbbbbbbbbb"] == ["a task row no accepted submission asked for"]


def test_an_earlier_scenarios_tasks_are_left_to_its_own_verdict(results: Path) -> None:
    rows = finished_rows()
    rows.finding_rows[TASK] = 10  # a duplicate an earlier scenario on the same stack made (and reported)
    rows.tasks["task_cccccccccccc"] = TaskRow("task_cccccccccccc", "fault", 1, "pending", None, None, 0)
    earlier = {TASK: ["findings: row 5, finding rows 10"]}
    later = judge(["task_cccccccccccc"], rows, result_folders(results), {}, earlier, known={TASK})
    assert later.duplicated == {} and later.disagreements == {} and later.lost == ["task_cccccccccccc"]
    unknown = judge(["task_cccccccccccc"], rows, result_folders(results), {}, earlier)
    assert unknown.duplicated[TASK][0] == "a task row no accepted submission asked for"
    assert unknown.judged == {TASK, "task_cccccccccccc"}  # reported once: a later verdict leaves them alone
    assert unknown.disagreements == earlier
