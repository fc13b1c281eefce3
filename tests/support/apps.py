"""What the app-runner tests share (no tests here): a skip marker where bubblewrap is missing, one virtualenv
cache for the whole session (the sample apps' venvs are prepared once by hash), small apps of the tests' own, and
a look into /proc for any process of an app left running."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from shared.operations.config import Settings, load_settings
from shared.wire.app_run import AppRun
from shared.wire.messages import AnalysisRequest
from shared.wire.tasks import TaskRef

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap (bwrap) is not installed: `apt-get install bubblewrap` (Makefile: make sandbox)",
)


@pytest.fixture(scope="session")
def app_work_dir() -> Iterator[Path]:
    """ASSAY_APP_WORK_DIR shared by every test of the session, so a venv is built once per requirements hash.
    Outside pytest's own temporary folders, which are private to root: the sandbox user must reach it."""
    folder = Path(tempfile.mkdtemp(prefix="assay-apps-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def runner_settings(tmp_path: Path, apps_dir: Path, work_dir: Path, **env: str) -> Settings:
    return load_settings(
        {
            "ASSAY_VAR_DIR": str(tmp_path / "var"),
            "ASSAY_APPS_DIR": str(apps_dir),
            "ASSAY_RESULTS_DIR": str(tmp_path / "results"),
            "ASSAY_APP_WORK_DIR": str(work_dir),
            **env,
        }
    )


def make_app(apps_dir: Path, model: str, number: int, files: Mapping[str, str]) -> Path:
    """`<apps_dir>/<model>/app<number>` with `files` (relative path → text)."""
    app = apps_dir / model / f"app{number}"
    for name, text in files.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(text)
    return app


def app_processes(record: AppRun) -> list[int]:
    """Live processes of the run: started with its ports in their environment, or its run folder on their command
    line (the sandbox itself)."""
    marks = [f"BACKEND_PORT={url.rsplit(':', 1)[1]}".encode() for url in record.urls.values()]
    folder = f"-{record.run_id}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if state != "Z" and (any(mark in environ for mark in marks) or folder in cmdline):
            found.append(int(entry.name))
    return found


def app_request(task_id: str, model: str, number: int) -> AnalysisRequest:
    """A dynamic analysis of `<model>/app<number>` naming no target URLs: Assay runs the app."""
    task = TaskRef(id=task_id, model_slug=model, app_number=number, analysis_type="dynamic")
    return AnalysisRequest(task=task)
