"""An app that cannot be prepared costs only the analyzers that need it running: through a real stack, the static
analyzer still reports its findings, the task ends `partial` with the reason, and `services/app.json` keeps the
whole preparation log with the requirement pip could not install."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec

from shared.wire.app_run import AppRun
from tests.support.apps import make_app, needs_bwrap
from tests.support.stack import Stack

pytestmark = needs_bwrap

MISSING = "assay-no-such-package-7f3a==1.2.2"
UNSAFE_APP = """
import os
import subprocess

from flask import Flask, request

app = Flask(__name__)


@app.route("/run")
def run():
    return subprocess.check_output(request.args["cmd"], shell=True)


if __name__ == "__main__":
    app.run(port=int(os.environ.get("PORT", 5000)))
"""


def test_an_app_whose_requirements_cannot_install_ends_partial_with_static_findings_and_the_log(
    tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    make_app(
        apps,
        "unstarted",
        1,
        {"backend/app.py": UNSAFE_APP, "backend/requirements.txt": f"flask\n{MISSING}\n"},
    )
    stack = Stack(
        tmp_path / "stack",
        apps_dir=apps,
        analyzers={"static": 1, "dynamic": 1},
        extra_env={"ASSAY_APP_WORK_DIR": str(app_work_dir)},
    )
    try:
        stack.start()
        task_id = stack.submit(
            model_slug="unstarted",
            app_number=1,
            analysis_type="comprehensive",
            tools=["bandit", "reachability"],
        )
        task = stack.wait_terminal(task_id, timeout_s=300)
    finally:
        stack.stop()
    assert task["status"] == "partial", (task["status"], task["status_reason"], stack.log_tail())
    assert "app did not start: installing backend/requirements.txt failed" in task["status_reason"]
    assert MISSING in task["status_reason"]
    with sqlite3.connect(stack.database_file) as db:
        rules = [rule for (rule,) in db.execute(
            "select rule_id from findings where task_id = ? and service = 'static'", (task_id,)
        )]  # fmt: skip
        services = dict(db.execute("select service, status from service_runs where task_id = ?", (task_id,)))
        (result_dir,) = db.execute("select result_dir from tasks where task_id = ?", (task_id,)).fetchone()
    assert any(rule.startswith("B602") or rule.startswith("B6") for rule in rules), rules  # shell=True
    assert services == {"static": "success", "dynamic": "failed"}, services
    record = msgspec.json.decode(
        (stack.results_dir / result_dir / "services" / "app.json").read_bytes(), type=AppRun
    )
    assert record.failing_requirement == MISSING
    assert record.error is not None and MISSING in record.error
    # pip's own words and exit status are kept, not a tail cut before them
    assert f"No matching distribution found for {MISSING}" in record.prepare_log
    assert "[pip: exit 1" in record.prepare_log and "$ " in record.prepare_log
