"""Frontends are served by Assay's own static server: over real HTTP it serves a folder's files (and nothing outside
it) on kept-alive connections; and through a real stack, a frontend Assay starts sandboxed gets no latency finding
under the default load test (Python's http.server gave every frontend a p99 of about 1 s)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from services.orchestrator.apps import static_server
from tests.support.apps import make_app, needs_bwrap
from tests.support.ports import free_port
from tests.support.processes import wait_for_port
from tests.support.stack import Stack

BACKEND = """
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


if __name__ == "__main__":
    ThreadingHTTPServer.request_queue_size = 1024
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""
PAGE = "<!doctype html><html><body>" + "<p>frontend</p>" * 100 + "</body></html>"


def test_the_static_server_serves_the_folder_only_on_kept_alive_connections(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "css").mkdir(parents=True)
    (site / "index.html").write_text(PAGE)
    (site / "css" / "app.css").write_text("body { color: red }")
    (tmp_path / "secret.txt").write_text("not yours")
    port = free_port()
    server = subprocess.Popen([sys.executable, static_server.__file__, str(port), str(site)])
    try:
        wait_for_port(port, server)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            index = client.get("/")
            style = client.get("/css/app.css?v=1")
            outside = client.get("/../secret.txt")
            encoded = client.get("/%2e%2e/secret.txt")
            head = client.head("/css/app.css")
            posted = client.post("/", content=b"")
        assert index.status_code == 200 and index.text == PAGE
        assert index.headers["content-type"] == "text/html"
        assert style.text == "body { color: red }" and style.headers["content-type"] == "text/css"
        assert outside.status_code == 404 and encoded.status_code == 404
        assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == "19"
        assert posted.status_code in (400, 405)
        assert index.headers["connection"] == "keep-alive"
        (site / "index.html").write_text("changed")  # kept in memory only while unchanged
        assert httpx.get(f"http://127.0.0.1:{port}/index.html", trust_env=False).text == "changed"
    finally:
        server.terminate()
        server.wait()


@needs_bwrap
def test_a_frontend_served_by_assay_gets_no_latency_finding_under_the_default_load(
    tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    make_app(apps, "frontend", 1, {"backend/app.py": BACKEND, "frontend/index.html": PAGE})
    stack = Stack(
        tmp_path / "stack",
        apps_dir=apps,
        analyzers={"performance": 1},
        extra_env={"ASSAY_APP_WORK_DIR": str(app_work_dir)},
    )
    try:
        stack.start()
        task_id = stack.submit(
            model_slug="frontend", app_number=1, analysis_type="performance", tools=["load"]
        )
        task = stack.wait_terminal(task_id, timeout_s=300)
    finally:
        stack.stop()
    assert task["status"] == "completed", (task["status"], task["status_reason"], stack.log_tail())
    with sqlite3.connect(stack.database_file) as db:
        findings = db.execute(
            "select rule_id, path, message from findings where task_id = ?", (task_id,)
        ).fetchall()
        (result_dir,) = db.execute("select result_dir from tasks where task_id = ?", (task_id,)).fetchone()
    latency = [finding for finding in findings if finding[0] == "p99-latency-exceeded"]
    assert latency == [], latency
    performance = json.loads((stack.results_dir / result_dir / "services" / "performance.json").read_text())
    loaded = performance["metrics"]["load"]["urls"]
    (frontend,) = [url for url, figures in loaded.items() if figures["bytes"] == 200 * len(PAGE)]
    figures = loaded[frontend]
    assert figures["completed"] == 200 and figures["errors"] == 0, figures  # the default load, all answered
    assert figures["latency_ms"]["p99"] < 1000, figures
