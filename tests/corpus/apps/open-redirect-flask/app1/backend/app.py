"""Link shortener landing: after choosing a language, the visitor goes back where they came from."""

import os

from flask import Flask, jsonify, redirect, request

app = Flask(__name__)


@app.get("/")
def home():
    return '<a href="/language?lang=en&return_to=/">English</a>'


@app.get("/language")
def choose_language():
    destination = request.args.get("return_to", "/")
    response = redirect(destination)
    response.set_cookie("lang", request.args.get("lang", "en"), httponly=True, samesite="Lax")
    return response


@app.get("/api/languages")
def languages():
    return jsonify(["en", "fr", "de"])


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
