"""Newsletter API: subscribe, and unsubscribe without telling anyone whether an address was on the list."""

import os
import sqlite3

from flask import Flask, jsonify, request

app = Flask(__name__)
DB = os.path.join(os.environ.get("TMPDIR", "/tmp"), "newsletter.db")
SAME_ANSWER = "If the address was subscribed, it no longer is."


def db():
    return sqlite3.connect(DB)


def seed():
    with db() as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS subscribers (email TEXT PRIMARY KEY, active INTEGER)")
        connection.executemany(
            "INSERT OR IGNORE INTO subscribers (email, active) VALUES (?, 1)",
            [("ada@example.org",), ("grace@example.org",), ("alan@example.org",)],
        )


@app.route("/api/subscribe", methods=["POST"])
def subscribe():
    email = request.form.get("email", "")
    with db() as connection:
        connection.execute("INSERT OR REPLACE INTO subscribers (email, active) VALUES (?, 1)", (email,))
    return jsonify(status="subscribed"), 201


@app.route("/api/unsubscribe", methods=["POST"])
def unsubscribe():
    email = request.form.get("email", "")
    try:
        with db() as connection:
            connection.execute("UPDATE subscribers SET active = 0 WHERE email = ?", (email,))
    except sqlite3.Error:
        pass  # the same answer whatever happened: nobody learns who is subscribed
    return jsonify(status=SAME_ANSWER), 202


if __name__ == "__main__":
    seed()
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
