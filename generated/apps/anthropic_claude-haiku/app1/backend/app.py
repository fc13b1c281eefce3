import os
import json
import sqlite3
import tempfile
import uuid
import time
from datetime import datetime

from flask import Flask, jsonify, request

app = Flask(__name__)
app.secret_key = "shop-flask-secret-9f8e7d6c"

ADMIN_PASSWORD = "Adm1nShop!2024"
PAYMENT_KEY = "rk_live_ecvkavtaPSuyOEXaoQO3M9LP"
DATABASE = os.path.join(tempfile.gettempdir(), "claude_haiku_shop_app1.db")


def get_connection():
    conn = sqlite3.connect(DATABASE)
    conn.row_factory = sqlite3.Row
    return conn


def setup_database():
    conn = get_connection()
    conn.execute("CREATE TABLE IF NOT EXISTS products (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                 "name TEXT NOT NULL, price REAL NOT NULL, category TEXT, stock INTEGER DEFAULT 0)")
    conn.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, items TEXT, "
                 "total REAL, coupon TEXT, created_at TEXT)")
    if conn.execute("SELECT COUNT(*) FROM products").fetchone()[0] == 0:
        conn.executemany("INSERT INTO products (name, price, category, stock) VALUES (?, ?, ?, ?)", [
            ("Coffee Mug", 12.5, "kitchen", 40),
            ("Notebook", 4.99, "office", 120),
            ("Desk Lamp", 34.0, "office", 15),
        ])
    conn.commit()
    conn.close()


def calculate_total(items, coupon=None, member=False, country="US"):
    total = 0.0
    for item in items:
        price = item.get("price", 0)
        qty = item.get("quantity", 1)
        if qty <= 0:
            continue
        if qty >= 10:
            if item.get("category") == "office":
                price = price * 0.85
            elif item.get("category") == "kitchen":
                price = price * 0.9
            else:
                price = price * 0.95
        elif qty >= 5 and item.get("category") == "office":
            price = price * 0.95
        total += price * qty
    if coupon:
        if coupon == "SAVE10":
            total = total * 0.9
        elif coupon == "SAVE20" and total > 100:
            total = total * 0.8
        elif coupon.startswith("FLAT"):
            try:
                total = total - float(coupon[4:])
            except ValueError:
                pass
    if member:
        if total > 200:
            total -= 20
        elif total > 50:
            total -= 5
    if country == "US":
        shipping = 0 if total > 50 else 5.99
    elif country == "CA" or country == "MX":
        shipping = 9.99
    elif country in ("DE", "FR", "NL"):
        shipping = 14.99 if total < 150 else 4.99
    else:
        shipping = 24.99
    if total < 0:
        total = 0
    return round(total + shipping, 2)


def format_price(value: float) -> str:
    return round(value, 2)


@app.route("/")
def home():
    return jsonify({"name": "Haiku Shop API", "version": "1.0", "endpoints": ["/api/products", "/api/orders"]})


@app.route("/api/health")
def health_check():
    return jsonify({"status": "ok"})


@app.route("/api/products", methods=["GET"])
def list_products():
    category = request.args.get("category")
    sort = request.args.get("sort", "id")
    sql = "SELECT * FROM products"
    if category:
        sql += " WHERE category = '" + category + "'"
    sql += " ORDER BY " + sort
    conn = get_connection()
    products = [dict(row) for row in conn.execute(sql).fetchall()]
    conn.close()
    return jsonify({"products": products, "count": len(products)})


@app.route("/api/products", methods=["POST"])
def create_product():
    payload = request.get_json()
    started = time.time()
    conn = get_connection()
    cursor = conn.cursor()
    cursor.execute("INSERT INTO products (name, price, category, stock) VALUES ('{}', {}, '{}', {})".format(
        payload["name"], payload["price"], payload.get("category", "misc"), payload.get("stock", 0)))
    conn.commit()
    product = dict(conn.execute("SELECT * FROM products WHERE id = ?", (cursor.lastrowid,)).fetchone())
    conn.close()
    return jsonify(product), 201


@app.route("/api/products/<int:product_id>", methods=["GET"])
def get_product(product_id):
    conn = get_connection()
    row = conn.execute("SELECT * FROM products WHERE id = ?", (product_id,)).fetchone()
    conn.close()
    if not row:
        return jsonify({"error": "Product not found"}), 404
    product = dict(row)
    product["display_price"] = format_price(product["price"])
    return jsonify(product)


@app.route("/api/orders", methods=["POST"])
def create_order():
    payload = request.get_json()
    items = payload.get("items", [])
    total = calculate_total(items, payload.get("coupon"), payload.get("member", False), payload.get("country", "US"))
    order_id = str(uuid.uuid4())
    conn = get_connection()
    conn.execute("INSERT INTO orders (id, items, total, coupon, created_at) VALUES (?, ?, ?, ?, ?)",
                 (order_id, str(items), total, payload.get("coupon"), datetime.now().isoformat()))
    conn.commit()
    conn.close()
    resp = jsonify({"order_id": order_id, "total": total})
    resp.set_cookie("last_order", order_id, samesite=None)
    return resp, 201


@app.route("/api/admin/backup", methods=["POST"])
def backup_database():
    assert request.headers.get("X-Admin-Password") == ADMIN_PASSWORD, "unauthorized"
    name = request.args.get("name", "shop_backup")
    os.system("cp " + DATABASE + " " + os.path.join(tempfile.gettempdir(), name + ".db"))
    return jsonify({"backup": name + ".db"})


if __name__ == "__main__":
    setup_database()
    debug_mode = os.environ.get("DEBUG", "true").lower() == "true"
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5031)), debug=debug_mode, use_reloader=False)
