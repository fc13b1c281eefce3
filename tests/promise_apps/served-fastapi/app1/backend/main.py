"""Reading list: readers sign up, log in for a bearer token, and keep the books they mean to read."""

import hashlib
import os
import secrets

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

app = FastAPI(title="Reading list")
bearer = HTTPBearer()
READERS: dict[str, str] = {}
TOKENS: dict[str, str] = {}
BOOKS: dict[int, dict] = {}


class Account(BaseModel):
    username: str = Field(min_length=3, max_length=40)
    password: str = Field(min_length=8)


class BookIn(BaseModel):
    title: str = Field(min_length=1)
    author: str
    pages: int = Field(ge=1, le=5000)
    finished: bool = False


class Import(BaseModel):
    catalogue_url: str


class Book(BookIn):
    id: int
    reader: str


def reader(credentials: HTTPAuthorizationCredentials = Depends(bearer)) -> str:
    name = TOKENS.get(credentials.credentials)
    if name is None:
        raise HTTPException(status_code=401, detail="log in first")
    return name


def owned(book_id: int, name: str) -> dict:
    book = BOOKS.get(book_id)
    if book is None or book["reader"] != name:
        raise HTTPException(status_code=404, detail="no such book")
    return book


@app.post("/api/signup", status_code=201)
def sign_up(account: Account) -> dict:
    if account.username in READERS:
        raise HTTPException(status_code=409, detail="that name is taken")
    READERS[account.username] = hashlib.sha256(account.password.encode()).hexdigest()
    return {"username": account.username}


@app.post("/api/login")
def log_in(account: Account) -> dict:
    if READERS.get(account.username) != hashlib.sha256(account.password.encode()).hexdigest():
        raise HTTPException(status_code=401, detail="wrong name or password")
    token = secrets.token_urlsafe(24)
    TOKENS[token] = account.username
    return {"access_token": token, "token_type": "bearer"}


@app.post("/api/books", status_code=201, response_model=Book)
def add_book(book: BookIn, name: str = Depends(reader)) -> dict:
    book_id = max(BOOKS, default=0) + 1
    BOOKS[book_id] = {"id": book_id, "reader": name, **book.model_dump()}
    return BOOKS[book_id]


@app.get("/api/books", response_model=list[Book])
def list_books(name: str = Depends(reader)) -> list[dict]:
    return [book for book in BOOKS.values() if book["reader"] == name]


@app.get("/api/books/{book_id}", response_model=Book, responses={404: {"description": "no such book"}})
def get_book(book_id: int, name: str = Depends(reader)) -> dict:
    return owned(book_id, name)


@app.put("/api/books/{book_id}", response_model=Book, responses={404: {"description": "no such book"}})
def change_book(book_id: int, change: BookIn, name: str = Depends(reader)) -> dict:
    book = owned(book_id, name)
    book.update(change.model_dump())
    return book


@app.delete("/api/books/{book_id}", status_code=204, responses={404: {"description": "no such book"}})
def remove_book(book_id: int, name: str = Depends(reader)) -> None:
    owned(book_id, name)
    del BOOKS[book_id]


@app.get("/api/search", response_model=list[Book])
def search(q: str = Query(min_length=2), name: str = Depends(reader)) -> list[dict]:
    term = q.lower()
    return [b for b in BOOKS.values() if b["reader"] == name and term in (b["title"] + b["author"]).lower()]


@app.post("/api/imports", status_code=202)
def import_books(request: Import, name: str = Depends(reader)) -> dict:
    if not request.catalogue_url.startswith("https://library.example.org/"):
        raise HTTPException(status_code=400, detail="only catalogues of the library can be imported")
    return {"queued": request.catalogue_url}


@app.get("/api/health")
def health() -> dict:
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 8000)))
