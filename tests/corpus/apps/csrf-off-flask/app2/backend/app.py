"""Profile: a signed-in member changes the address on file through a form."""

import os

from flask import Flask, redirect, render_template_string, request, session
from flask_wtf.csrf import CSRFProtect

app = Flask(__name__)
app.secret_key = os.environ["SECRET_KEY"]
app.config["WTF_CSRF_ENABLED"] = True
csrf = CSRFProtect(app)
ADDRESSES: dict[str, str] = {}

FORM = """<form method="post" action="/profile/address">
<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<input name="address" value="{{ address }}"><button>Save</button></form>"""


@app.get("/profile")
def profile():
    return render_template_string(FORM, address=ADDRESSES.get(session.get("user", ""), ""))


@app.post("/profile/address")
def change_address():
    ADDRESSES[session.get("user", "")] = request.form.get("address", "")
    return redirect("/profile")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
