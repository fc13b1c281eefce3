"""Members: sign up and sign in with a password."""

import os
import sqlite3

from flask import Flask, jsonify, request
from werkzeug.security import check_password_hash, generate_password_hash

app = Flask(__name__)
DATABASE = os.environ.get("DATABASE", "members.db")


def connect() -> sqlite3.Connection:
    connection = sqlite3.connect(DATABASE)
    connection.execute("CREATE TABLE IF NOT EXISTS members (name TEXT PRIMARY KEY, digest TEXT)")
    return connection


@app.post("/api/signup")
def signup():
    body = request.get_json(silent=True) or {}
    with connect() as connection:
        connection.execute("INSERT INTO members VALUES (?, ?)", (body["name"], generate_password_hash(body["password"])))
    return jsonify({"name": body["name"]}), 201


@app.post("/api/signin")
def signin():
    body = request.get_json(silent=True) or {}
    with connect() as connection:
        row = connection.execute("SELECT digest FROM members WHERE name = ?", (body.get("name"),)).fetchone()
    ok = row is not None and check_password_hash(row[0], body.get("password", ""))
    return jsonify({"signed_in": ok}), 200 if ok else 401


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
