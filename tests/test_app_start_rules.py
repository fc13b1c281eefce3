"""Apps as they are written, started as they are: each app of the tests' own is started sandboxed (real bwrap) by
the start rule that fits it, found listening where it chose to (a hard-coded port, APP_PORT, a YAML file, the PORT
Assay passes), and answers over HTTP through Assay's forwarder; app.json names the rule and the address."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import msgspec
import pytest

from services.orchestrator.apps.errors import AppNotStarted
from services.orchestrator.apps.runner import AppRunner, AppSlot
from services.orchestrator.apps.start_rules import Installed, choose, dockerfile_command
from shared.wire.messages import AnalysisRequest
from shared.wire.options import RequestOptions
from tests.support.apps import app_processes, app_request, make_app, needs_bwrap, runner_settings

FLASK_REQUIREMENTS = "flask\ngunicorn\n"
ASGI_REQUIREMENTS = "fastapi\nuvicorn\n"


def _flask(body: str, tail: str) -> str:
    return f"from flask import Flask\n\napp = Flask(__name__)\n\n\n@app.get('/')\ndef index():\n    return {body!r}\n{tail}"


HARD_CODED_ANY = _flask("any", "\nif __name__ == '__main__':\n    app.run(host='0.0.0.0', port=5000)\n")
HARD_CODED_LOOPBACK = _flask(
    "loopback", "\nif __name__ == '__main__':\n    app.run(host='127.0.0.1', port=5000)\n"
)
STDLIB_SERVER = """
import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = BODY
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", PORT_EXPRESSION), Handler).serve_forever()
"""
APP_PORT = STDLIB_SERVER.replace("BODY", "b'app-port'").replace(
    "PORT_EXPRESSION", "int(os.environ.get('APP_PORT', '8765'))"
)
YAML_PORT = STDLIB_SERVER.replace("BODY", "b'yaml'").replace(
    "PORT_EXPRESSION",
    "int(next(line.split(':')[1] for line in open('config.yaml') if line.startswith('port:')))",
)
FACTORY = (
    "from flask import Flask\n\n\ndef create_app():\n    app = Flask(__name__)\n"
    "    app.add_url_rule('/', 'index', lambda: 'factory')\n    return app\n"
)
FASTAPI = (
    "from fastapi import FastAPI\n\napi = FastAPI()\n\n\n@api.get('/')\ndef index():\n    return 'asgi'\n"
)
NODE_SERVER = "require('http').createServer((q, s) => s.end('node')).listen(3000, '127.0.0.1');\n"

CASES: dict[str, tuple[dict[str, str], str, str, str]] = {
    # name: (files, expected start rule, expected answer, expected listening address or "PORT")
    "hard-coded-0.0.0.0": (
        {"backend/app.py": HARD_CODED_ANY, "backend/requirements.txt": FLASK_REQUIREMENTS},
        "python-file",
        "any",
        "0.0.0.0:5000",
    ),
    "hard-coded-127.0.0.1": (
        {"backend/app.py": HARD_CODED_LOOPBACK, "backend/requirements.txt": FLASK_REQUIREMENTS},
        "python-file",
        "loopback",
        "127.0.0.1:5000",
    ),
    "app-port": ({"backend/server.py": APP_PORT}, "python-file", "app-port", "127.0.0.1:8765"),
    "yaml-port": (
        {"backend/main.py": YAML_PORT, "backend/config.yaml": "name: demo\nport: 6001\n"},
        "python-file",
        "yaml",
        "127.0.0.1:6001",
    ),
    "flask-run": (
        {"backend/app.py": _flask("flask-run", ""), "backend/requirements.txt": FLASK_REQUIREMENTS},
        "flask-run",
        "flask-run",
        "PORT",
    ),
    "app-factory": (
        {"backend/factory.py": FACTORY, "backend/requirements.txt": FLASK_REQUIREMENTS},
        "flask-run",
        "factory",
        "PORT",
    ),
    "uvicorn": (
        {"backend/main.py": FASTAPI, "backend/requirements.txt": ASGI_REQUIREMENTS},
        "asgi",
        '"asgi"',
        "PORT",
    ),
    "procfile-gunicorn": (
        {
            "backend/app.py": _flask("gunicorn", ""),
            "backend/requirements.txt": FLASK_REQUIREMENTS,
            "Procfile": "web: cd backend && gunicorn --bind 0.0.0.0:7100 --workers 2 app:app\n",
        },
        "procfile",
        "gunicorn",
        "0.0.0.0:7100",
    ),
    "dockerfile": (
        {
            "backend/serve.py": STDLIB_SERVER.replace("BODY", "b'docker'").replace("PORT_EXPRESSION", "8080"),
            "backend/Dockerfile": 'FROM python:3.11-slim\nWORKDIR /app\nCOPY . .\nCMD ["python", "serve.py"]\n',
        },
        "dockerfile",
        "docker",
        "127.0.0.1:8080",
    ),
    "explicit": (
        {
            "backend/odd_name.py": STDLIB_SERVER.replace("BODY", "b'explicit'").replace(
                "PORT_EXPRESSION", "int(os.environ['WHERE'])"
            ),
            ".env": "ASSAY_START=WHERE=7007 python odd_name.py\n",
        },
        "explicit",
        "explicit",
        "127.0.0.1:7007",
    ),
}
EXPRESS_SERVER = (
    "const app = require('express')();\napp.get('/', (q, s) => s.send('express'));\napp.listen(3001);\n"
)
EXPRESS_PACKAGE = {
    "name": "api",
    "scripts": {"start": "node server.js"},
    "dependencies": {"express": "4.21.2"},
}
if shutil.which("node"):
    CASES["node"] = ({"backend/server.js": NODE_SERVER}, "node-file", "node", "127.0.0.1:3000")
if shutil.which("node") and shutil.which("npm"):  # its dependencies from npm, like a frontend's
    CASES["node-express"] = (
        {"backend/server.js": EXPRESS_SERVER, "backend/package.json": json.dumps(EXPRESS_PACKAGE)},
        "node-start",
        "express",
        "[::]:3001",
    )


@needs_bwrap
@pytest.mark.parametrize("case", sorted(CASES))
async def test_each_app_starts_by_its_rule_and_answers_where_it_listens(
    case: str, tmp_path: Path, app_work_dir: Path
) -> None:
    files, rule, answer, where = CASES[case]
    apps = tmp_path / "apps"
    make_app(apps, "rules", 1, files)
    runner = AppRunner(runner_settings(tmp_path, apps, app_work_dir))
    answers: list[str] = []
    ports: dict[str, int] = {}

    async def analyze(request: AnalysisRequest, app_ports: dict[str, int]) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            answers.append((await client.get(request.target_urls[0])).text.strip())
        ports.update(app_ports)

    slot = AppSlot()
    await runner.run(app_request("task_00000000rule", "rules", 1), slot, analyze)
    record = slot.record
    assert record is not None and record.error is None, record and (record.error, record.output_tail)
    assert answers == [answer], (answers, record.output_tail)
    assert record.start_rule == rule, (record.start_rule, record.start_why)
    expected = f"127.0.0.1:{ports['BACKEND_PORT']}" if where == "PORT" else where
    # the address inside the sandbox; the forwarder's port outside is Assay's own
    assert record.listening["backend"][0].endswith(expected.split(":")[1]), record.listening
    assert record.listening["backend"][0] == expected or where == "PORT", record.listening
    assert app_processes(record) == []


def _apps_with(tmp_path: Path, files: dict[str, str]) -> Path:
    return make_app(tmp_path, "m", 1, files)


def test_the_order_of_the_rules_explicit_first_fallback_last(tmp_path: Path) -> None:
    flask = Installed(packages=frozenset({"flask"}))
    app = _apps_with(
        tmp_path / "a", {"backend/app.py": _flask("x", ""), "backend/Dockerfile": "CMD python app.py\n"}
    )
    assert choose(app, flask).rule == "flask-run"  # type: ignore[union-attr]
    assert choose(app, Installed()).rule == "dockerfile"  # type: ignore[union-attr]
    options: dict[str, object] = {"app": {"start": "python app.py"}}
    assert choose(app, flask, options).rule == "explicit"  # type: ignore[union-attr]
    bare = _apps_with(tmp_path / "b", {"backend/wsgi.py": "import app\n"})
    assert choose(bare, flask).rule == "python-fallback"  # type: ignore[union-attr]
    assert choose(_apps_with(tmp_path / "c", {"backend/README.md": "hi"}), flask) is None
    package = {"scripts": {"start": "node dist/main.js"}}
    node = _apps_with(tmp_path / "d", {"backend/package.json": json.dumps(package)})
    assert choose(node, Installed(node=True)).argv == ["{npm}", "start"]  # type: ignore[union-attr]


def test_a_dockerfile_command_joins_entrypoint_and_cmd_in_either_form() -> None:
    text = 'FROM python\nENTRYPOINT ["gunicorn"]\nCMD ["--bind", "0.0.0.0:8000", \\\n "app:app"]\n'
    assert dockerfile_command(text) == "gunicorn --bind 0.0.0.0:8000 app:app"
    assert dockerfile_command("CMD uvicorn main:app --port $PORT\n") == "uvicorn main:app --port $PORT"
    assert dockerfile_command("FROM scratch\n") is None


@needs_bwrap
async def test_an_app_no_rule_fits_starts_by_the_requests_own_command(
    tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    odd = STDLIB_SERVER.replace("BODY", "b'by request'").replace("PORT_EXPRESSION", "9001")
    make_app(apps, "odd", 1, {"backend/odd.py": odd})
    runner = AppRunner(runner_settings(tmp_path, apps, app_work_dir))
    slot = AppSlot()
    with pytest.raises(AppNotStarted, match="no start rule fits"):
        await runner.run(app_request("task_0000000odd01", "odd", 1), slot, _never)
    # the gateway admits the option as it is (RequestOptions), and the runner starts what it says
    options = msgspec.to_builtins(msgspec.convert({"app": {"start": "python odd.py"}}, RequestOptions))
    request = msgspec.structs.replace(app_request("task_0000000odd02", "odd", 1), options=options)
    answers: list[str] = []

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            answers.append((await client.get(request.target_urls[0])).text)

    slot = AppSlot()
    await runner.run(request, slot, analyze)
    assert answers == ["by request"]
    assert slot.record is not None and slot.record.start_rule == "explicit"
    assert slot.record.start_why == "the request's options.app.start"
    assert slot.record.listening["backend"] == ["127.0.0.1:9001"]


async def _never(request: AnalysisRequest, ports: dict[str, int]) -> None:
    raise AssertionError("an app that did not start was analyzed")


@needs_bwrap
async def test_where_the_app_listens_is_what_the_sandbox_found_not_what_the_app_printed(
    tmp_path: Path, app_work_dir: Path
) -> None:
    # app.json's `listening` comes over the control channel, which the app cannot write to: the same line printed
    # by the app (it shares the output with inside.py) is not taken for it
    forged = "assay-init: backend listens on 10.9.8.7:6543"
    server = STDLIB_SERVER.replace("BODY", "b'honest'").replace("PORT_EXPRESSION", "9002")
    server = server.replace(
        'if __name__ == "__main__":\n', f'if __name__ == "__main__":\n    print({forged!r}, flush=True)\n'
    )
    apps = tmp_path / "apps"
    make_app(apps, "forger", 1, {"backend/app.py": server})
    answers: list[str] = []

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            answers.append((await client.get(request.target_urls[0])).text)

    slot = AppSlot()
    await AppRunner(runner_settings(tmp_path, apps, app_work_dir)).run(
        app_request("task_000000forge1", "forger", 1), slot, analyze
    )
    assert answers == ["honest"]
    assert slot.record is not None and forged in slot.record.output_tail, slot.record
    assert slot.record.listening == {"backend": ["127.0.0.1:9002"]}, slot.record.listening
