"""What the README and docs/operations.md tell a new user to run, run as written against a real `assay up`: the
event subscriber example (with `assay subscriber`'s variables) prints the events of a task, and the grep for a
task's log lines finds them (and only them) in what `assay up` wrote."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_cli_supervisor import APP, MODEL, REPO, Up, saved_token, up_env

README = REPO / "README.md"
OPERATIONS = REPO / "docs" / "operations.md"


def subscriber_example() -> str:
    """The Python block of the README's "Programs subscribing to events" section."""
    section = README.read_text().split("### Programs subscribing to events", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def log_grep_command() -> str:
    """The grep docs/operations.md gives for one task's log lines (with `<task_id>` to fill in)."""
    [command] = re.findall(r"`(grep [^`]*<task_id>[^`]*)`", OPERATIONS.read_text())
    return str(command)


def ready_json(up: Up, timeout_s: float = 90.0) -> dict[str, Any]:
    """The one JSON object `assay up --json` prints once ready."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert up.process.poll() is None, f"assay up exited early:\n{up.stderr.read_text()[-3000:]}"
        text = up.stdout.read_text()
        if text.endswith("\n"):
            ready: dict[str, Any] = json.loads(text)
            return ready
        time.sleep(0.2)
    raise TimeoutError(f"assay up not ready after {timeout_s} s:\n{up.stderr.read_text()[-3000:]}")


def assay(root: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


def wait_lines(path: Path, wanted: str, count: int, timeout_s: float = 120.0) -> list[str]:
    """The lines of `path` containing `wanted`, once there are `count` of them."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = [line for line in path.read_text().splitlines() if wanted in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


@pytest.mark.stack  # `assay up` as a process: its own supervisor, nats-server and services
def test_the_readme_subscriber_and_the_log_grep_work_against_assay_up(tmp_path: Path) -> None:
    env = up_env(tmp_path)
    (tmp_path / "apps" / MODEL / f"app{APP}" / "app.py").write_text("print('hello')\n")
    up = Up(tmp_path, env, 1, "--json")
    subscriber = None
    try:
        ready = ready_json(up)
        assert ready["gateway_url"] == env["ASSAY_GATEWAY_URL"] and ready["api_docs"].endswith("/schema")
        assert ready["nats_url"].startswith("nats://127.0.0.1:") and "gateway" in ready["metrics"]
        variables = dict(line.split("=", 1) for line in assay(tmp_path, env, "subscriber").splitlines())
        assert set(variables) == {"NATS_URL", "NATS_USER", "NATS_PASSWORD"}
        assert variables["NATS_URL"] == ready["nats_url"] and variables["NATS_USER"] == "subscriber"
        assert json.loads(assay(tmp_path, env, "subscriber", "--json")) == {
            "nats_url": ready["nats_url"], "user": "subscriber", "password": variables["NATS_PASSWORD"],
        }  # fmt: skip

        script = tmp_path / "subscriber.py"
        script.write_text(subscriber_example())
        printed = tmp_path / "subscriber.out"
        with printed.open("w") as out:
            subscriber = subprocess.Popen(
                [sys.executable, str(script)], cwd=tmp_path, env={**os.environ, **variables}, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        time.sleep(2)  # connected and subscribed (it prints nothing until an event comes)
        assert subscriber.poll() is None, printed.read_text()
        body = {"model_slug": MODEL, "app_number": APP, "analysis_type": "static", "tools": ["radon"]}
        answer = httpx.post(
            f"{ready['gateway_url']}/api/analysis/run", json=body, headers=saved_token(env), timeout=10
        )
        assert answer.status_code == 202, answer.text
        task_id = answer.json()["task_id"]

        lines = wait_lines(printed, task_id, 2)
        assert lines[0] == f"started {task_id} {MODEL}/app{APP}", printed.read_text()
        assert wait_lines(printed, f"completed {task_id}", 1), printed.read_text()

        # The persister records the end after the event: its log line about the task comes a moment later.
        deadline = time.monotonic() + 60
        while not any(
            line.startswith("[persister] ") for line in wait_lines(up.stderr, task_id, 1, timeout_s=0)
        ):
            assert time.monotonic() < deadline, up.stderr.read_text()[-2000:]
            time.sleep(0.2)
        grep = log_grep_command().replace("<task_id>", task_id).replace("assay.log", str(up.stderr))
        found = subprocess.run(grep, shell=True, capture_output=True, text=True, timeout=30, check=False)
        assert found.returncode == 0, (grep, up.stderr.read_text()[-2000:])
        matched = found.stdout.splitlines()
        assert matched and all(task_id in line for line in matched)
        services = {line.split("] ", 1)[0].lstrip("[") for line in matched}
        assert {"gateway", "orchestrator", "persister"} <= services, services
    finally:
        if subscriber is not None:
            subscriber.kill()
            subscriber.wait()
        assert up.interrupt() == 0
