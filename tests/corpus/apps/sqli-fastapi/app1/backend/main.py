"""Inventory service: items in stock, by id."""

import os
import sqlite3

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI(title="Inventory")
DB = os.path.join(os.environ.get("TMPDIR", "/tmp"), "inventory.db")


class NewItem(BaseModel):
    name: str
    quantity: int = 0


def connect() -> sqlite3.Connection:
    connection = sqlite3.connect(DB)
    connection.row_factory = sqlite3.Row
    return connection


@app.on_event("startup")
def create_tables() -> None:
    with connect() as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, quantity INTEGER)")
        if not connection.execute("SELECT COUNT(*) FROM items").fetchone()[0]:
            connection.executemany("INSERT INTO items (name, quantity) VALUES (?, ?)", [("bolt", 40), ("nut", 75)])


@app.get("/inventory/items")
def list_items():
    with connect() as connection:
        return [dict(row) for row in connection.execute("SELECT id, name, quantity FROM items")]


@app.post("/inventory/items", status_code=201)
def add_item(item: NewItem):
    with connect() as connection:
        cursor = connection.execute("INSERT INTO items (name, quantity) VALUES (?, ?)", (item.name, item.quantity))
        return {"id": cursor.lastrowid, "name": item.name, "quantity": item.quantity}


@app.get("/inventory/items/{item_id}")
def read_item(item_id: str):
    with connect() as connection:
        row = connection.execute(f"SELECT id, name, quantity FROM items WHERE id = {item_id}").fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail="no such item")
    return dict(row)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 8000)))
