"""Photo gallery API: pages of photos."""

import os

from flask import Flask, jsonify, request

app = Flask(__name__)
PHOTOS = [f"photo-{n}.jpg" for n in range(1, 31)]


@app.get("/api/photos")
def photos():
    page = int(request.args.get("page", "1"))
    size = 10
    return jsonify(page=page, photos=PHOTOS[(page - 1) * size : page * size])


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)), debug=False, use_reloader=False)

