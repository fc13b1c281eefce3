"""Pantry API: what is in the kitchen cupboards (openapi.yaml, beside this folder, describes it)."""

import os
import urllib.request

from flask import Flask, jsonify, request

app = Flask(__name__)
ITEMS: dict[int, dict] = {}
SUPPLIERS: dict[str, dict] = {}
UNITS = ("g", "kg", "piece")
LOW = 2
PRICE_SERVICE = os.environ.get("PRICE_SERVICE_URL", "https://prices.example.com/today")


@app.get("/api/health")
def health():
    return jsonify(status="ok")


@app.get("/api/items")
def list_items():
    return jsonify(list(ITEMS.values()))


@app.post("/api/items")
def add_item():
    data = request.get_json(silent=True) or {}
    name, quantity = data.get("name"), data.get("quantity")
    if not isinstance(name, str) or not name or not isinstance(quantity, int) or quantity < 0:
        return jsonify(error="name and a quantity of 0 or more are required"), 400
    if data.get("unit", "piece") not in UNITS:
        return jsonify(error=f"unit is one of {', '.join(UNITS)}"), 400
    item_id = max(ITEMS, default=0) + 1
    ITEMS[item_id] = {"id": item_id, "name": name, "quantity": quantity, "unit": data.get("unit", "piece")}
    return jsonify(ITEMS[item_id]), 201


@app.get("/api/items/search")
def search_items():
    term = request.args["q"].lower()
    limit = request.args.get("limit", 50, type=int)
    found = [item for item in ITEMS.values() if term in item["name"].lower()]
    return jsonify(sorted(found, key=lambda item: item["title"])[:limit])


@app.get("/api/items/<int:item_id>")
def get_item(item_id):
    item = ITEMS.get(item_id)
    return (jsonify(item), 200) if item else (jsonify(error="no such item"), 404)


@app.patch("/api/items/<int:item_id>")
def change_item(item_id):
    item = ITEMS.get(item_id)
    if item is None:
        return jsonify(error="no such item"), 404
    quantity = (request.get_json(silent=True) or {}).get("quantity")
    if not isinstance(quantity, int) or quantity < 0:
        return jsonify(error="quantity of 0 or more is required"), 400
    item["quantity"] = quantity
    return jsonify(item)


@app.delete("/api/items/<int:item_id>")
def remove_item(item_id):
    if ITEMS.pop(item_id, None) is None:
        return jsonify(error="no such item"), 404
    return "", 204


@app.get("/api/suppliers/<supplier_id>")
def get_supplier(supplier_id):
    supplier = SUPPLIERS.get(supplier_id)
    return (jsonify(supplier), 200) if supplier else (jsonify(error="no such supplier"), 404)


@app.get("/api/prices")
def prices():
    try:
        with urllib.request.urlopen(PRICE_SERVICE, timeout=3) as answer:
            return jsonify(prices=answer.read(4096).decode())
    except OSError:
        return jsonify(error="the price service did not answer"), 502


@app.get("/api/stats")
def stats():
    return jsonify(items=len(ITEMS), low=sum(1 for item in ITEMS.values() if item["quantity"] <= LOW))


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
