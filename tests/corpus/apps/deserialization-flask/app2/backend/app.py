"""Shop preferences: the visitor's display preferences travel in a cookie."""

import base64
import json
import os
import pickle

from flask import Flask, jsonify, make_response, request

app = Flask(__name__)
DEFAULTS = {"theme": "light", "currency": "EUR"}


def load_preferences(raw):
    if not raw:
        return dict(DEFAULTS)
    try:
        return json.loads(base64.b64decode(raw))
    except Exception:  # noqa: BLE001
        return dict(DEFAULTS)


def dump_preferences(preferences):
    return base64.b64encode(json.dumps(preferences).encode()).decode()



@app.get("/")
def home():
    preferences = load_preferences(request.cookies.get("prefs"))
    response = make_response(jsonify(welcome="shop", preferences=preferences))
    response.set_cookie("prefs", dump_preferences(preferences), httponly=True, samesite="Lax")
    return response


@app.post("/api/preferences")
def save_preferences():
    preferences = load_preferences(request.cookies.get("prefs"))
    preferences.update({k: str(v) for k, v in (request.get_json(silent=True) or {}).items() if k in DEFAULTS})
    response = make_response(jsonify(preferences))
    response.set_cookie("prefs", dump_preferences(preferences), httponly=True, samesite="Lax")
    return response


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
