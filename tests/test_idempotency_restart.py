"""The must-show of client retries: the same `Idempotency-Key` sent before and after a full restart of every
service (nats-server, persister, orchestrator, analyzer, gateway: separate processes, tests/support/stack.py)
returns one task."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from tests.support.stack import one_app_stack

MODEL, APP = "restart-model", 1
BODY = {"model_slug": MODEL, "app_number": APP, "analysis_type": "static", "tools": ["bandit"]}


def test_the_same_key_before_and_after_a_full_restart_returns_one_task(tmp_path: Path) -> None:
    with one_app_stack(tmp_path, MODEL, APP, "import os\n\nos.system('ls')\n") as stack:
        token = stack.token
        headers = {**stack.headers, "Idempotency-Key": "retry-after-restart-1"}
        first = httpx.post(f"{stack.gateway_url}/api/analysis/run", json=BODY, headers=headers, timeout=10)
        assert first.status_code == 202, first.text
        task_id = first.json()["task_id"]
        stack.wait_terminal(task_id)

        stack.stop()  # every process, nats-server included
        stack.start()
        stack.token = token  # keys are per token: the client keeps using its own
        again = httpx.post(f"{stack.gateway_url}/api/analysis/run", json=BODY, headers=headers, timeout=10)

        assert again.status_code == 202, again.text
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert stack.task(task_id)["status"] == "completed"
        with sqlite3.connect(stack.database_file) as db:
            assert db.execute("select task_id from tasks").fetchall() == [(task_id,)]
