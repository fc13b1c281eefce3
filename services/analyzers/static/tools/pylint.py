"""pylint: Python errors, warnings, refactoring hints and conventions."""

from __future__ import annotations

import msgspec

from services.analyzers.static.tools.cli_tool import CliTool
from services.analyzers.static.tools.source import AppSource, as_arguments
from services.analyzers.static.tools.warm_tool import WarmTool
from shared.operations.process import ProcessOutcome
from shared.results.findings import Finding, Severity

SEVERITY: dict[str, Severity] = {
    "fatal": "high",
    "error": "high",
    "warning": "medium",
    "refactor": "low",
    "convention": "info",
    "info": "info",
}


# What the warm server runs pylint on once, so that astroid has built the modules generated web apps import before
# any app's run forks from it (an app's own modules are never part of the warm state).
WARM_UP_SOURCE = """\"\"\"What generated web apps import and do, for pylint's warm server.\"\"\"
import json
import os
import sqlite3
from datetime import datetime, timedelta
from functools import wraps

from flask import Flask, g, jsonify, request, send_from_directory, session
from flask_cors import CORS
from werkzeug.security import check_password_hash, generate_password_hash

app = Flask(__name__)
CORS(app)


def get_db():
    if "db" not in g:
        g.db = sqlite3.connect(os.environ.get("DB", "app.db"))
        g.db.row_factory = sqlite3.Row
    return g.db


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if "user_id" not in session:
            return jsonify({"error": "unauthorized"}), 401
        return view(*args, **kwargs)

    return wrapped


@app.route("/api/items", methods=["GET", "POST"])
@login_required
def items():
    db = get_db()
    if request.method == "POST":
        data = request.get_json() or {}
        db.execute("INSERT INTO items (name, at) VALUES (?, ?)", (data.get("name"), datetime.now().isoformat()))
        db.commit()
    rows = db.execute("SELECT * FROM items").fetchall()
    return jsonify([dict(row) for row in rows]), 200


@app.route("/")
def index():
    token = generate_password_hash("x") + str(timedelta(days=1)) + json.dumps({})
    return send_from_directory(".", "index.html") if check_password_hash(token, "x") else token


if __name__ == "__main__":
    app.run(debug=True)
"""
WARM_SERVER = WarmTool("pylint", WARM_UP_SOURCE)


class PylintMessage(msgspec.Struct):
    type: str
    symbol: str
    message: str
    message_id: str = msgspec.field(name="messageId")
    path: str = ""
    line: int | None = None
    column: int | None = None
    end_line: int | None = msgspec.field(default=None, name="endLine")


class PylintReport(msgspec.Struct):
    messages: list[PylintMessage]


class Pylint(CliTool):
    name = "pylint"
    program = "pylint"
    # pylint's exit code is a bit mask of the message types it emitted; 32 means it could not run at all
    ok_exit_codes = frozenset(range(32))
    warm = WARM_SERVER  # its start-up (imports, astroid building flask and the like) is most of a small app's run

    def command(self, program: str, files: list[str]) -> list[str]:
        # --rcfile=/dev/null: an app's own pylintrc could load plugins or run an init-hook, i.e. run its code here
        return [
            program,
            "--rcfile=/dev/null",
            "--persistent=n",
            "--output-format=json2",
            "--recursive=y",
            "--score=n",
            *as_arguments(files),
        ]

    def parse(self, outcome: ProcessOutcome, source: AppSource) -> list[Finding]:
        report = msgspec.json.decode(outcome.stdout, type=PylintReport)
        return [
            source.finding(
                rule_id=message.symbol,
                severity=SEVERITY.get(message.type, "info"),
                message=f"{message.message} ({message.message_id})",
                path=message.path,
                line=message.line,
                column=None if message.column is None else message.column + 1,
                end_line=message.end_line,
                category="quality",
                extra={"message_id": message.message_id, "type": message.type},
            )
            for message in report.messages
        ]
