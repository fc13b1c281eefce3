"""Guestbook: visitors sign it through the JSON API, the book is a server-rendered page."""

import os

from flask import Flask, jsonify, render_template_string, request

app = Flask(__name__)
ENTRIES: list[dict[str, str]] = []

BOOK = """<!doctype html>
<html><body><h1>Guestbook</h1>
{% for entry in entries %}
  <article><h2>{{ entry.author }}</h2><div>{{ entry.message }}</div>
</article>
{% endfor %}
</body></html>"""


@app.get("/")
def book():
    return render_template_string(BOOK, entries=ENTRIES)


@app.get("/api/entries")
def list_entries():
    return jsonify(ENTRIES)


@app.post("/api/entries")
def sign():
    data = request.get_json(silent=True) or {}
    author = str(data.get("author", "anonymous"))[:80]
    message = str(data.get("message", ""))[:2000]
    ENTRIES.append({"author": author, "message": message})
    return jsonify(ok=True, count=len(ENTRIES)), 201


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
