"""Greeting cards: a personal greeting page for a visitor."""

import os

from flask import Flask, render_template_string, request

app = Flask(__name__)

CARD = """<!doctype html>
<html><head><title>Greeting</title></head>
<body><main>{body}</main></body></html>"""


@app.route("/")
def index():
    return CARD.format(body='<form action="/card"><input name="name"><button>Make a card</button></form>')


@app.route("/card")
def card():
    name = request.args.get("name", "friend")
    return render_template_string(CARD.format(body=f"<p>Happy birthday, {name}!</p>"))


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
