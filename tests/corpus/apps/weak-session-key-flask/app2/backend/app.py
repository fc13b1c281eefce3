"""Wishlist: users sign up and keep a wishlist; the session is Flask's signed cookie."""

import os

from flask import Flask, jsonify, request, session

app = Flask(__name__)
app.secret_key = os.environ.get("SECRET_KEY") or os.urandom(32)

USERS: dict[str, str] = {}
WISHES: dict[str, list[str]] = {}


@app.post("/api/signup")
def signup():
    data = request.get_json(silent=True) or {}
    username, password = data.get("username", ""), data.get("password", "")
    if not username or not password or username in USERS:
        return jsonify(error="invalid"), 400
    USERS[username] = password
    session["user"] = username
    return jsonify(user=username), 201


@app.get("/api/wishes")
def wishes():
    if "user" not in session:
        return jsonify(error="log in first"), 401
    return jsonify(WISHES.get(session["user"], []))


@app.post("/api/wishes")
def add_wish():
    if "user" not in session:
        return jsonify(error="log in first"), 401
    item = str((request.get_json(silent=True) or {}).get("item", ""))
    WISHES.setdefault(session["user"], []).append(item)
    return jsonify(WISHES[session["user"]]), 201


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
