"""Bookshelf API: search the catalogue of books."""

import os
import sqlite3

from flask import Flask, jsonify, request

app = Flask(__name__)
DB = os.path.join(os.environ.get("TMPDIR", "/tmp"), "books.db")


def db():
    connection = sqlite3.connect(DB)
    connection.row_factory = sqlite3.Row
    return connection


def seed():
    with db() as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS books (id INTEGER PRIMARY KEY, title TEXT, author TEXT)")
        if not connection.execute("SELECT COUNT(*) FROM books").fetchone()[0]:
            connection.executemany(
                "INSERT INTO books (title, author) VALUES (?, ?)",
                [("Dune", "Frank Herbert"), ("Emma", "Jane Austen"), ("Ulysses", "James Joyce")],
            )


@app.route("/api/health")
def health():
    return jsonify(status="ok")


@app.route("/api/books/search")
def search_books():
    term = request.args.get("q", "")
    with db() as connection:
        query = f"SELECT id, title, author FROM books WHERE title LIKE '%{term}%'"
        try:
            rows = connection.execute(query).fetchall()
        except sqlite3.Error as error:
            return jsonify(error=str(error)), 500
    return jsonify(books=[dict(row) for row in rows])


@app.route("/api/books/<int:book_id>")
def get_book(book_id):
    with db() as connection:
        row = connection.execute("SELECT id, title, author FROM books WHERE id = ?", (book_id,)).fetchone()
    if row is None:
        return jsonify(error="not found"), 404
    return jsonify(dict(row))


if __name__ == "__main__":
    seed()
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
