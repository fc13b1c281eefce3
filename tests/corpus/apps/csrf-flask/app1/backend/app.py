"""Account settings: a server-rendered site with a cookie session; users change their contact email."""

import os

from flask import Flask, redirect, request, session

app = Flask(__name__)
app.secret_key = os.environ.get("SECRET_KEY", os.urandom(32))
app.config.update(SESSION_COOKIE_HTTPONLY=True)
ACCOUNTS: dict[str, dict[str, str]] = {}


@app.get("/")
def home():
    if "user" not in session:
        return '<form method="post" action="/register"><input name="username"><input name="password" type="password"><button>Join</button></form>'
    account = ACCOUNTS[session["user"]]
    return f'<p>Email: {account["email"]}</p><form method="post" action="/settings/email"><input name="email"><button>Save</button></form>'


@app.post("/register")
def register():
    username, password = request.form.get("username", ""), request.form.get("password", "")
    if not username or not password or username in ACCOUNTS:
        return "invalid", 400
    ACCOUNTS[username] = {"password": password, "email": ""}
    session["user"] = username
    return redirect("/")


@app.post("/login")
def login():
    username, password = request.form.get("username", ""), request.form.get("password", "")
    if ACCOUNTS.get(username, {}).get("password") != password:
        return "wrong username or password", 401
    session["user"] = username
    return redirect("/")


@app.post("/settings/email")
def change_email():
    if "user" not in session:
        return "log in first", 401
    ACCOUNTS[session["user"]]["email"] = request.form.get("email", "")
    return redirect("/")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
