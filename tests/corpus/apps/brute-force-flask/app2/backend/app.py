"""Members area: sign up and log in with a JSON API; tokens are kept in memory."""

import hashlib
import os
import secrets
import time

from flask import Flask, jsonify, request

app = Flask(__name__)
USERS: dict[str, str] = {}
TOKENS: dict[str, str] = {}
FAILURES: dict[str, list[float]] = {}
WINDOW_S = 300
MAX_FAILURES = 5


def digest(password):
    return hashlib.sha256(password.encode()).hexdigest()


def locked(username):
    recent = [t for t in FAILURES.get(username, []) if time.time() - t < WINDOW_S]
    FAILURES[username] = recent
    return len(recent) >= MAX_FAILURES


@app.post("/auth/signup")
def signup():
    data = request.get_json(silent=True) or {}
    username, password = str(data.get("username", "")), str(data.get("password", ""))
    if not username or len(password) < 8 or username in USERS:
        return jsonify(error="invalid sign-up"), 400
    USERS[username] = digest(password)
    return jsonify(username=username), 201


@app.post("/auth/login")
def login():
    data = request.get_json(silent=True) or {}
    username, password = str(data.get("username", "")), str(data.get("password", ""))
    if locked(username):
        return jsonify(error="too many failed attempts, try later"), 429
    if USERS.get(username) != digest(password):

        FAILURES.setdefault(username, []).append(time.time())
        return jsonify(error="wrong username or password"), 401
    token = secrets.token_urlsafe(24)
    TOKENS[token] = username
    return jsonify(token=token)


@app.get("/api/me")
def me():
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if token not in TOKENS:
        return jsonify(error="log in first"), 401
    return jsonify(username=TOKENS[token])


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
