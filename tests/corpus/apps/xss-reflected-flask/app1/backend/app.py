"""Feedback form: visitors leave a comment and see it echoed back for confirmation."""

import os

from flask import Flask, request
from markupsafe import escape

app = Flask(__name__)

PAGE = "<!doctype html><html><body>{}</body></html>"


@app.get("/")
def form():
    return PAGE.format(
        '<form method="post" action="/feedback">'
        '<input name="email"><textarea name="comment"></textarea><button>Send</button></form>'
    )


@app.post("/feedback")
def feedback():
    email = escape(request.form.get("email", ""))
    comment = request.form.get("comment", "")
    return PAGE.format(f"<p>Thanks {email}! You wrote:</p><blockquote>{comment}</blockquote>")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
