"""Private notes: users register, log in for a bearer token, and keep notes only they should see."""

import hashlib
import os
import secrets

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel

app = FastAPI(title="Private notes")
USERS: dict[str, str] = {}
TOKENS: dict[str, str] = {}
NOTES: dict[int, dict] = {}


class Credentials(BaseModel):
    username: str
    password: str


class NoteIn(BaseModel):
    title: str
    body: str


def current_user(authorization: str = Header(default="")) -> str:
    user = TOKENS.get(authorization.removeprefix("Bearer "))
    if user is None:
        raise HTTPException(status_code=401, detail="log in first")
    return user


@app.post("/api/users", status_code=201)
def register(credentials: Credentials):
    if credentials.username in USERS or len(credentials.password) < 8:
        raise HTTPException(status_code=400, detail="invalid")
    USERS[credentials.username] = hashlib.sha256(credentials.password.encode()).hexdigest()
    return {"username": credentials.username}


@app.post("/api/sessions")
def log_in(credentials: Credentials):
    if USERS.get(credentials.username) != hashlib.sha256(credentials.password.encode()).hexdigest():
        raise HTTPException(status_code=401, detail="wrong username or password")
    token = secrets.token_urlsafe(24)
    TOKENS[token] = credentials.username
    return {"access_token": token, "token_type": "bearer"}


@app.post("/api/notes", status_code=201)
def create_note(note: NoteIn, user: str = Depends(current_user)):
    note_id = len(NOTES) + 1
    NOTES[note_id] = {"id": note_id, "owner": user, "title": note.title, "body": note.body}
    return NOTES[note_id]


@app.get("/api/notes/{note_id}")
def read_note(note_id: int, user: str = Depends(current_user)):
    note = NOTES.get(note_id)
    if note is None:
        raise HTTPException(status_code=404, detail="no such note")
    return note


@app.put("/api/notes/{note_id}")
def update_note(note_id: int, change: NoteIn, user: str = Depends(current_user)):
    note = NOTES.get(note_id)
    if note is None or note["owner"] != user:
        raise HTTPException(status_code=404, detail="no such note")
    note.update(title=change.title, body=change.body)
    return note


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 8000)))
