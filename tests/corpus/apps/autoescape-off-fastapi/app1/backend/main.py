"""Event listing: the events page is rendered on the server from a Jinja2 template."""

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader

app = FastAPI()
templates = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=False)
EVENTS: list[dict[str, str]] = [{"title": "Jazz night", "place": "The Cellar"}]


@app.get("/events", response_class=HTMLResponse)
def events(place: str = ""):
    chosen = [event for event in EVENTS if place.lower() in event["place"].lower()]
    return templates.get_template("events.html").render(events=chosen, place=place)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 8000)))
