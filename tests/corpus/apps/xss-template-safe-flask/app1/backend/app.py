"""Wiki: pages written by members, shown with their formatting."""

import os

from flask import Flask, abort, redirect, render_template, request

app = Flask(__name__)
PAGES: dict[str, str] = {"home": "Welcome to the wiki."}


@app.get("/wiki/<name>")
def show(name: str):
    if name not in PAGES:
        abort(404)
    return render_template("page.html", name=name, body=PAGES[name])


@app.post("/wiki/<name>")
def edit(name: str):
    PAGES[name] = request.form.get("body", "")
    return redirect(f"/wiki/{name}")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
