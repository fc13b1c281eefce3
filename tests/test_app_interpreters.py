"""The Python an app declares is chosen among those installed (or the reason none fits is given), and pins that
cannot install are relaxed, recorded exactly, and the app still starts: each app of the tests' own is prepared with
real pip and started sandboxed (real bwrap), and answers over HTTP."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from services.orchestrator.apps.interpreters import choose, declared, installed
from services.orchestrator.apps.pins import relax
from services.orchestrator.apps.runner import AppRunner, AppSlot
from shared.wire.messages import AnalysisRequest
from tests.support.apps import app_request, make_app, needs_bwrap, runner_settings

FLASK_APP = """
import os
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    import flask
    return "flask " + flask.__version__


if __name__ == "__main__":
    app.run(port=int(os.environ["PORT"]))
"""
IMPOSSIBLE_PIN = "flask==0.0.999"


def _version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def test_the_declared_python_is_found_where_apps_declare_it(tmp_path: Path) -> None:
    cases = {
        "runtime.txt": ("python-3.8.10\n", "==3.8.*"),
        ".python-version": ("3.9\n", "==3.9.*"),
        "backend/setup.py": ("setup(name='x', python_requires='>=3.7,<3.10')\n", ">=3.7,<3.10"),
        "pyproject.toml": ('[project]\nrequires-python = ">=3.10"\n', ">=3.10"),
        "Dockerfile": ("FROM docker.io/library/python:3.12-slim\n", "==3.12.*"),
    }
    for index, (name, (text, spec)) in enumerate(cases.items()):
        app = make_app(tmp_path, "m", index + 1, {name: text})
        assert declared(app) == (spec, name), name
    assert declared(make_app(tmp_path, "m", 99, {"backend/app.py": ""})) is None


def test_the_newest_fitting_installed_python_is_chosen_or_the_default_with_the_reason(tmp_path: Path) -> None:
    pythons = {"3.9": "/usr/bin/python3.9", "3.11": "/usr/bin/python3.11", "3.12": "/usr/bin/python3.12"}
    fits = choose(
        make_app(tmp_path, "m", 1, {"runtime.txt": "python-3.11.4"}), "/usr/bin/python3.12", pythons
    )
    assert fits.path == "/usr/bin/python3.11" and "3.11 fits" in fits.why
    ranged = choose(make_app(tmp_path, "m", 2, {"setup.py": "python_requires='<3.12'"}), "x", pythons)
    assert ranged.path == "/usr/bin/python3.11"
    none = choose(make_app(tmp_path, "m", 3, {".python-version": "2.7"}), "/usr/bin/python3.12", pythons)
    assert none.path == "/usr/bin/python3.12"
    assert "no installed Python fits (installed: 3.9, 3.11, 3.12); used 3.12" in none.why
    real = (
        installed()
    )  # this machine's own: the interpreter running the tests is among them when it is a system one
    assert all(os.access(path, os.X_OK) for path in real.values())


def test_relaxing_removes_only_the_named_pin_then_every_pin() -> None:
    text = (
        "# web\nFlask==0.0.999\ngevent==1.2.2 ; python_version < '3.12'\nrequests>=2\n-r other.txt\nplain\n"
    )
    one, changed = relax(text, "gevent")
    assert changed == {"gevent==1.2.2 ; python_version < '3.12'": "gevent ; python_version < '3.12'"}
    assert "Flask==0.0.999" in one
    every, changed = relax(text)
    assert changed == {
        "Flask==0.0.999": "Flask",
        "gevent==1.2.2 ; python_version < '3.12'": "gevent ; python_version < '3.12'",
        "requests>=2": "requests",
    }
    assert "-r other.txt" in every and "plain" in every


@needs_bwrap
async def test_a_pin_that_cannot_install_is_relaxed_recorded_and_the_app_runs(
    tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    files = {
        "backend/app.py": FLASK_APP,
        "backend/requirements.txt": f"{IMPOSSIBLE_PIN}\n",
        "runtime.txt": "python-2.7.18\n",
    }
    make_app(apps, "pinned", 1, files)
    answers: list[str] = []

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            answers.append((await client.get(request.target_urls[0])).text)

    slot = AppSlot()
    runner = AppRunner(runner_settings(tmp_path, apps, app_work_dir))
    await runner.run(app_request("task_0000000pins1", "pinned", 1), slot, analyze)
    record = slot.record
    assert record is not None and record.error is None, record
    assert answers and answers[0].startswith("flask ") and answers[0] != "flask 0.0.999", answers
    assert record.relaxed_requirements == {IMPOSSIBLE_PIN: "flask"}
    assert f"No matching distribution found for {IMPOSSIBLE_PIN}" in record.prepare_log
    assert f"relaxing pins that cannot install: {IMPOSSIBLE_PIN} → flask" in record.prepare_log
    assert "runtime.txt declares Python ==2.7.*, but no installed Python fits" in record.python_why
    assert record.python == runner.prepare_config.python
