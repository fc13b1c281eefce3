"""Members: sign up and sign in with a password."""

import hashlib
import os
import sqlite3

from flask import Flask, jsonify, request

app = Flask(__name__)
DATABASE = os.environ.get("DATABASE", "members.db")


def connect() -> sqlite3.Connection:
    connection = sqlite3.connect(DATABASE)
    connection.execute("CREATE TABLE IF NOT EXISTS members (name TEXT PRIMARY KEY, digest TEXT)")
    return connection


def hash_password(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


@app.post("/api/signup")
def signup():
    body = request.get_json(silent=True) or {}
    with connect() as connection:
        connection.execute("INSERT INTO members VALUES (?, ?)", (body["name"], hash_password(body["password"])))
    return jsonify({"name": body["name"]}), 201


@app.post("/api/signin")
def signin():
    body = request.get_json(silent=True) or {}
    with connect() as connection:
        row = connection.execute("SELECT digest FROM members WHERE name = ?", (body.get("name"),)).fetchone()
    ok = row is not None and row[0] == hash_password(body.get("password", ""))
    return jsonify({"signed_in": ok}), 200 if ok else 401


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
