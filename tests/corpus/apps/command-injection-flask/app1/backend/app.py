"""Network tools: look up the address of a host name."""

import os
import subprocess

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/api/health")
def health():
    return jsonify(status="ok")


@app.route("/api/lookup", methods=["POST"])
def lookup():
    payload = request.get_json(force=True)
    hostname = payload.get("hostname", "localhost")
    result = subprocess.run(f"getent hosts {hostname}", shell=True, capture_output=True, text=True, timeout=10)
    return jsonify(hostname=hostname, output=result.stdout, found=result.returncode == 0)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
