"""Where an app's files come from, judged by content: real libraries (the ones `make install` puts under the static
analyzer's node folder) renamed as an app would, a test file, a generated migration and the app's own code; and
the static tools' findings carry the class of their file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.analyzers.static.tools.semgrep import Semgrep
from shared.results.origins import classify, classify_file
from tests.support.static import REPO, run_in_process

LIBRARIES = REPO / "services" / "analyzers" / "static" / "node" / "node_modules"
MINIFIED_LIBRARY = LIBRARIES / "esquery" / "dist" / "esquery.min.js"
UNMINIFIED_LIBRARY = LIBRARIES / "acorn" / "dist" / "acorn.js"

APP_JS = """// The to-do list: render the items the API returns.
const list = document.getElementById("items");

async function load() {
  const response = await fetch("/api/items");
  const items = await response.json();
  list.innerHTML = items.map((item) => `<li>${item.title}</li>`).join("");
}

load();
"""
TEST_PY = """import pytest

from app import app


@pytest.fixture
def client():
    return app.test_client()


def check_home(client):
    assert client.get("/").status_code == 200
"""
JS_TEST = """const request = require("supertest");
const app = require("../server");

describe("GET /api/items", () => {
  it("answers", async () => { await request(app).get("/api/items").expect(200); });
});
"""
MIGRATION = '''"""add users

Revision ID: 3f1a
"""
revision = "3f1a"
down_revision = None
'''


@pytest.fixture
def app(tmp_path: Path) -> Path:
    if not MINIFIED_LIBRARY.exists() or not UNMINIFIED_LIBRARY.exists():
        pytest.skip("the node tools are not installed (make install with Node.js)")
    folder = tmp_path / "model" / "app1"
    (folder / "frontend" / "static").mkdir(parents=True)
    (folder / "backend" / "migrations").mkdir(parents=True)
    shutil.copy(
        MINIFIED_LIBRARY, folder / "frontend" / "loader.js"
    )  # a minified library under a name of its own
    shutil.copy(UNMINIFIED_LIBRARY, folder / "frontend" / "static" / "parser.js")  # 6,000 readable lines
    (folder / "frontend" / "app.js").write_text(APP_JS)
    (folder / "backend" / "checks.py").write_text(TEST_PY)  # a test by its imports, not its name
    (folder / "frontend" / "api.check.js").write_text(JS_TEST)
    (folder / "backend" / "migrations" / "3f1a_users.py").write_text(MIGRATION)
    return folder


def test_each_file_is_classified_by_its_content(app: Path) -> None:
    assert classify_file(app, "frontend/loader.js") == "vendored"
    assert classify_file(app, "frontend/static/parser.js") == "vendored"
    assert classify_file(app, "frontend/app.js") == "app"
    assert classify_file(app, "backend/checks.py") == "test"
    assert classify_file(app, "frontend/api.check.js") == "test"
    assert classify_file(app, "backend/migrations/3f1a_users.py") == "generated"


def test_a_minified_bundle_without_a_banner_is_minified_and_a_test_is_known_by_its_name_too() -> None:
    statements = "".join(
        f"var a{i}=document.getElementById('x{i}');a{i}.textContent=String({i});" for i in range(80)
    )
    assert classify("static/bundle.js", statements + "\n") == "minified"
    assert classify("static/app.js", APP_JS.replace("\n", "\n\n")) == "app"
    assert classify("tests/test_items.py", "def test_items():\n    assert True\n") == "test"
    assert classify("backend/test_data.json.py", "ROWS = []\n") == "test"
    assert classify("backend/app.py", "from flask import Flask\napp = Flask(__name__)\n") == "app"


async def test_findings_carry_the_origin_of_their_file(app: Path) -> None:
    result = await run_in_process([Semgrep()], app)
    origins = {finding.path: finding.origin for finding in result.findings}
    assert origins.get("frontend/app.js") == "app"  # the innerHTML of the app's own script
    assert {origin for path, origin in origins.items() if (path or "").startswith("frontend/static/")} <= {
        "vendored"
    }
