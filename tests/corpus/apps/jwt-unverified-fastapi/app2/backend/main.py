"""Team notes: the notes of the team named in the caller's bearer token."""

import os

import jwt
from fastapi import FastAPI, Header, HTTPException

app = FastAPI()
SECRET = os.environ["JWT_SECRET"]
NOTES = {"red": ["kick-off on Monday"], "blue": ["demo on Friday"]}


def team_of(authorization: str) -> str:
    token = authorization.removeprefix("Bearer ").strip()
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    except jwt.PyJWTError:
        raise HTTPException(status_code=401, detail="bad token") from None
    return str(claims.get("team", ""))


@app.get("/api/notes")
def notes(authorization: str = Header(default="")):
    return NOTES.get(team_of(authorization), [])


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 8000)))
