"""Recipes: a small recipe site with a friendly not-found page."""

import os

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from jinja2 import Template
from starlette.exceptions import HTTPException as StarletteHTTPException

app = FastAPI(title="Recipes")

RECIPES = {"pancakes": "Flour, milk, eggs.", "omelette": "Eggs, butter, salt."}


@app.get("/recipes")
def list_recipes():
    return {"recipes": sorted(RECIPES)}


@app.get("/recipes/{slug}")
def show_recipe(slug: str):
    if slug not in RECIPES:
        raise StarletteHTTPException(status_code=404)
    return {"name": slug, "ingredients": RECIPES[slug]}


@app.exception_handler(StarletteHTTPException)
async def friendly_error(request: Request, exc: StarletteHTTPException):
    page = Template(f"<h1>Sorry, {request.url.path} is not on the menu</h1>", autoescape=True).render()
    return HTMLResponse(page, status_code=exc.status_code)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 8000)))
