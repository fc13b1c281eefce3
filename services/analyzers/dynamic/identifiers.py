"""Objects the app itself named, for the calls that address one: the id a POST's answer gives the object it created,
else the first identifier a collection's listing gives (`[{"id": 3, …}]`, `{"recipes": ["pancakes", …]}`). A later
call on that collection (`/api/notes/{note_id}`, `/api/reports/download?name=`) uses it instead of a guess, so an
answer "no such object" means the app lost it, not that Assay made it up."""

from __future__ import annotations

import json
import re
from typing import Any

from services.analyzers.running_app.surface.model import normalize_template

ID_KEYS = ("id", "_id", "uuid", "pk", "slug", "key", "name")
LIST_KEYS = ("items", "data", "results")
# Query parameters that search, page or shape an answer rather than name an object (a path parameter always does).
NOT_AN_OBJECT = re.compile(
    r"^(q|query|search|term|keywords?|filter|limit|offset|page|per_?page|page_?size|size|count|sort|order(_?by)?"
    r"|dir|direction|lang|locale|format|fields|expand|include|from|to|since|until)$",
    re.IGNORECASE,
)


def _identifier(node: Any, singular: str) -> str | None:
    if isinstance(node, (str, int)) and not isinstance(node, bool):
        return str(node)
    if not isinstance(node, dict):
        return None
    for key in (*ID_KEYS[:4], f"{singular}_id", f"{singular}Id", *ID_KEYS[4:]):
        value = node.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    return None


def created_id(answer: Any, collection: str) -> str | None:
    """The id of the object a POST's answer describes (or one level down: `{"note": {…}}`)."""
    singular = collection.rstrip("/").rsplit("/", 1)[-1].removesuffix("s")
    nodes = [answer, *(answer.values() if isinstance(answer, dict) else ())]
    return next(
        (found for node in nodes if isinstance(node, dict) and (found := _identifier(node, singular))), None
    )


def listed_id(answer: Any, collection: str) -> str | None:
    """The first identifier a listing of `collection` gives: a list, or one under the collection's own name
    (`{"recipes": […]}`) or a usual key (`items`, `data`, `results`)."""
    name = collection.rstrip("/").rsplit("/", 1)[-1]
    listing = answer
    if isinstance(answer, dict):
        listing = next((answer[key] for key in (name, *LIST_KEYS) if isinstance(answer.get(key), list)), None)
    if not isinstance(listing, list) or not listing:
        return None
    return _identifier(listing[0], name.removesuffix("s"))


class Known:
    """Collection template (`/api/notes`) → the identifier of an object the app named in it."""

    def __init__(self) -> None:
        self.objects: dict[str, str] = {}

    def remember(self, method: str, template: str, text: str) -> None:
        """What a kept promise's answer names: a POST's new object (it wins), else a GET's first listed one."""
        if method not in ("POST", "GET"):
            return
        try:
            answer = json.loads(text)
        except ValueError:
            return
        collection = normalize_template(template.split("?", 1)[0])
        if method == "POST":
            found = created_id(answer, collection)
            if found is not None:
                self.objects[collection] = found
        elif collection not in self.objects:
            found = listed_id(answer, collection)
            if found is not None:
                self.objects[collection] = found

    def in_path(self, template: str, name: str) -> str | None:
        """The object for path parameter `name` of `template`: one of the collection before it."""
        return self.objects.get(normalize_template(template.split("{" + name + "}", 1)[0]))

    def in_query(self, template: str, name: str) -> str | None:
        """The object for a query parameter that names one: one of the nearest collection the path is under."""
        if NOT_AN_OBJECT.match(name):
            return None
        path = normalize_template(template.split("?", 1)[0])
        while True:
            if path in self.objects:
                return self.objects[path]
            if path == "/":
                return None
            path = path.rsplit("/", 1)[0] or "/"
