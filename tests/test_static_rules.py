"""What the static tools report, rated by the one rule table, on small real apps: code execution from a request is
critical, simplification rules are never security, templates and SQL seeds are scanned, and a semgrep run that
skipped part of its work is recorded partial with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.analyzers.base.runner import service_status
from services.analyzers.static.tools.bandit import Bandit
from services.analyzers.static.tools.eslint import Eslint
from services.analyzers.static.tools.pylint import Pylint
from services.analyzers.static.tools.ruff import Ruff
from services.analyzers.static.tools.semgrep import Semgrep
from tests.support.static import run_in_process

APP = '''"""Session restore."""
import base64
import pickle

from flask import Flask, request

app = Flask(__name__)


@app.get("/restore")
def restore():
    state = pickle.loads(base64.b64decode(request.cookies["state"]))
    if state:
        label = "yes"
    else:
        label = "no"
    return label
'''


@pytest.fixture
def app(tmp_path: Path) -> Path:
    folder = tmp_path / "apps" / "model" / "app1"
    (folder / "backend" / "templates").mkdir(parents=True)
    (folder / "backend" / "app.py").write_text(APP)
    (folder / "backend" / "templates" / "book.html").write_text(
        "<ul>{% for entry in entries %}\n<li>{{ entry.message|safe }}</li>\n{% endfor %}</ul>\n"
    )
    (folder / "backend" / "seed.sql").write_text(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, password TEXT);\n"
        "INSERT INTO users (username, password) VALUES ('admin', 'admin');\n"
    )
    return folder


async def test_pickle_loads_of_request_data_is_critical_and_sim108_is_not_security(app: Path) -> None:
    result = await run_in_process([Semgrep(), Bandit(), Ruff()], app)
    on_line = [f for f in result.findings if f.path == "backend/app.py" and f.line == 12]
    semgrep = [f for f in on_line if f.tool == "semgrep"]
    assert [(f.rule_id, f.severity, f.cwe) for f in semgrep] == [
        ("python-unsafe-deserialization", "critical", "CWE-502")
    ]
    assert {(f.rule_id, f.severity) for f in on_line if f.tool == "bandit"} == {("B301", "high")}

    sim108 = [f for f in result.findings if f.rule_id == "SIM108"]
    assert sim108 and all(f.category == "quality" for f in sim108)
    assert all(f.category == "security" for f in result.findings if f.tool == "ruff" and f.rule_id == "S301")
    imports = [f for f in result.findings if f.rule_id == "B403"]  # `import pickle`: an audit note
    assert imports and all(f.severity == "info" for f in imports)


async def test_templates_and_sql_seed_files_are_scanned(app: Path) -> None:
    result = await run_in_process([Semgrep()], app)
    found = {(f.rule_id, f.path, f.line) for f in result.findings}
    assert ("template-unescaped-output", "backend/templates/book.html", 2) in found
    assert ("sql-seeded-default-credentials", "backend/seed.sql", 2) in found
    assert result.tools[0].files_analyzed == 3


async def test_semgrep_that_could_not_parse_a_file_is_partial_with_the_reason(app: Path) -> None:
    (app / "frontend").mkdir()
    (app / "frontend" / "broken.js").write_text("function show( {\n")
    result = await run_in_process([Semgrep()], app)
    run = result.tools[0]
    assert run.status == "partial"
    assert run.reason is not None and "frontend/broken.js" in run.reason and "PartialParsing" in run.reason
    assert any(f.rule_id == "python-unsafe-deserialization" for f in result.findings)  # the rest still counts
    assert service_status(result.tools) == "partial"


async def test_imports_the_tools_cannot_resolve_are_one_info_note_per_tool(tmp_path: Path) -> None:
    folder = tmp_path / "apps" / "model" / "app1" / "backend"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(
        '"""Orders."""\nimport orders_db_driver\nimport payments_sdk_xyz\n\nprint(orders_db_driver, payments_sdk_xyz)\n'
    )
    (folder / "jobs.py").write_text('"""Jobs."""\nimport orders_db_driver\n\nprint(orders_db_driver)\n')
    result = await run_in_process([Pylint()], folder.parent)
    notes = [f for f in result.findings if f.rule_id == "unresolved-imports"]
    assert [(f.severity, f.category, f.path) for f in notes] == [("info", "environment", None)]
    assert notes[0].extra["modules"] == {"orders_db_driver": 2, "payments_sdk_xyz": 1}
    assert not [f for f in result.findings if f.rule_id == "import-error"]


async def test_the_maintained_eslint_rule_sets_run_beside_assays_own(tmp_path: Path) -> None:
    """eslint-plugin-no-unsanitized and eslint-plugin-security, installed from npm with eslint: an innerHTML of
    fetched data and a shell command built from a request are security findings with their CWE."""
    app = tmp_path / "apps" / "model" / "app1"
    (app / "frontend").mkdir(parents=True)
    (app / "backend").mkdir()
    (app / "frontend" / "app.js").write_text(
        'const list = document.getElementById("items");\n'
        'fetch("/api/items").then((r) => r.json()).then((items) => {\n'
        "  list.innerHTML = items.map((item) => `<li>${item.name}</li>`).join('');\n"
        "});\n"
    )
    (app / "backend" / "server.js").write_text(
        'const { exec } = require("child_process");\n'
        "module.exports = (req, res) => exec(`ping -c1 ${req.query.host}`, () => res.end());\n"
    )
    result = await run_in_process([Eslint()], app)
    if result.tools[0].status == "skipped":
        pytest.skip(result.tools[0].reason or "eslint is not installed")
    found = {(f.rule_id, f.path, f.line, f.category, f.cwe) for f in result.findings if "/" in f.rule_id}
    assert ("no-unsanitized/property", "frontend/app.js", 3, "security", "CWE-79") in found
    assert ("security/detect-child-process", "backend/server.js", 2, "security", "CWE-78") in found
