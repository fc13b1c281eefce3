"""Help desk: agents sign in to see the tickets."""

import os
import sqlite3
from pathlib import Path

from flask import Flask, jsonify, request
from werkzeug.security import check_password_hash, generate_password_hash

app = Flask(__name__)
DATABASE = os.environ.get("DATABASE", "desk.db")
SCHEMA = Path(__file__).with_name("schema.sql")


def connect() -> sqlite3.Connection:
    connection = sqlite3.connect(DATABASE)
    connection.executescript(SCHEMA.read_text())
    connection.execute(
        "INSERT OR IGNORE INTO agents (username, password_hash, role) VALUES (?, ?, ?)",
        ("admin", generate_password_hash(os.environ["ADMIN_PASSWORD"]), "admin"),
    )
    return connection


@app.post("/api/signin")
def signin():
    body = request.get_json(silent=True) or {}
    with connect() as connection:
        row = connection.execute(
            "SELECT password_hash FROM agents WHERE username = ?", (body.get("username"),)
        ).fetchone()
    ok = row is not None and check_password_hash(row[0], body.get("password", ""))
    return jsonify({"signed_in": ok}), 200 if ok else 401


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
