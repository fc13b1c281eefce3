"""`assay apps import`, run as the real CLI in a subprocess: a repository with server/ and client/ folders, a
single-file app and a plain static site are laid out as Assay expects, their files unchanged, with what was
decided printed; the imported single-file app is then started sandboxed (real bwrap) by the rule the import named
and answers over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from services.orchestrator.apps.runner import AppRunner, AppSlot
from shared.wire.messages import AnalysisRequest
from tests.support.apps import app_request, needs_bwrap, runner_settings

REPO = Path(__file__).resolve().parent.parent
SINGLE_FILE = """
import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "8")
        self.end_headers()
        self.wfile.write(b"imported")


if __name__ == "__main__":
    HTTPServer(("0.0.0.0", 5000), Handler).serve_forever()
"""
FLASK_SERVER = "from flask import Flask\n\napp = Flask(__name__)\n"


def _import(apps: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASSAY_APPS_DIR": str(apps), "ASSAY_VAR_DIR": str(tmp_path / "var")}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "apps", "import", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_repository_is_laid_out_with_its_files_unchanged_and_the_decisions_said(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    files = {
        "server/main.py": FLASK_SERVER,
        "server/requirements.txt": "flask\npsycopg2-binary\n",
        "client/index.html": "<h1>client</h1>",
        "client/app.js": "console.log('hi')",
        "docker-compose.yml": "services:\n  db:\n    image: postgres:15\n",
        ".env": "SECRET_KEY=kept\n",
        ".git/HEAD": "ref: refs/heads/main\n",
        "README.md": "a repo",
    }
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    apps = tmp_path / "apps"
    done = _import(apps, tmp_path, str(repo), "--model", "someone", "--json")
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)
    target = apps / "someone" / "app1"
    assert decision["target"] == str(target)
    assert decision["backend"] == "the server/ folder → backend/"
    assert decision["frontend"] == "the client/ folder → frontend/"
    assert decision["start_rule"].startswith("flask-run: a Flask app `app` in backend/main.py")
    assert decision["dependencies"] == ["postgresql (the postgres image in docker-compose.yml)"]
    assert _files(target / "backend") == _files(repo / "server")  # the code as it was
    assert _files(target / "frontend") == _files(repo / "client")
    assert (target / ".env").read_text() == "SECRET_KEY=kept\n"
    assert (target / "docker-compose.yml").is_file() and not (target / ".git").exists()
    again = _import(apps, tmp_path, str(repo), "--model", "someone", "--app", "1")
    assert again.returncode == 2 and "exists already" in again.stdout
    static = tmp_path / "site"
    static.mkdir()
    (static / "index.html").write_text("<p>static</p>")
    done = _import(apps, tmp_path, str(static), "--model", "someone")
    assert done.returncode == 0, done.stderr
    assert "imported" in done.stdout and "app2" in done.stdout
    assert "frontend: the repository's root (a static site) → frontend/" in done.stdout
    assert (apps / "someone" / "app2" / "frontend" / "index.html").read_text() == "<p>static</p>"


@needs_bwrap
async def test_an_imported_single_file_app_starts_by_the_rule_the_import_named(
    tmp_path: Path, app_work_dir: Path
) -> None:
    source = tmp_path / "todo_service.py"
    source.write_text(SINGLE_FILE)
    apps = tmp_path / "apps"
    done = _import(apps, tmp_path, str(source), "--model", "mine", "--app", "7")
    assert done.returncode == 0, done.stderr
    assert "backend: todo_service.py → backend/todo_service.py (a single-file app)" in done.stdout
    assert ".env: ASSAY_START=python todo_service.py" in done.stdout
    assert "start rule: explicit: ASSAY_START in .env" in done.stdout
    assert (apps / "mine" / "app7" / "backend" / "todo_service.py").read_text() == SINGLE_FILE
    answers: list[str] = []

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            answers.append((await client.get(request.target_urls[0])).text)

    slot = AppSlot()
    await AppRunner(runner_settings(tmp_path, apps, app_work_dir)).run(
        app_request("task_000000import", "mine", 7), slot, analyze
    )
    assert answers == ["imported"]
    assert slot.record is not None and slot.record.start_rule == "explicit"
    assert slot.record.listening["backend"] == ["0.0.0.0:5000"]
