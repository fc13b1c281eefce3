"""What an app promises to answer: each call its `requirements.json` lists, or each operation of its OpenAPI
document, with the statuses that keep the promise.

A requirements.json endpoint promises one status. An OpenAPI operation promises the statuses its `responses`
declare: a 2xx one when it declares any (`201`, or a range such as `2XX`), else one of those it declares, and with
only `default` any answer below 500. Operations are called creating before reading, changing and deleting (an
object a POST creates is what the later calls address), signing up and logging in first.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from services.analyzers.dynamic.instances import example_of, instance
from services.analyzers.dynamic.users import is_login, is_register
from services.analyzers.running_app.requirements import Requirements
from services.analyzers.running_app.surface.documents import VERBS, base_path, resolve
from services.analyzers.running_app.surface.model import Endpoint, Field, Location

Source = Literal["requirements", "openapi"]
BodyKind = Literal["json", "form"]
ParameterLocation = Literal["path", "query", "header", "cookie"]
MEDIA: tuple[tuple[str, BodyKind], ...] = (
    ("application/json", "json"),
    ("application/x-www-form-urlencoded", "form"),
    ("multipart/form-data", "form"),
)
# Creating first (what later calls address), deleting last (it would take it away).
METHOD_ORDER = {"POST": 0, "GET": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}
STATUS = re.compile(r"^[1-5](\d\d|XX)$", re.IGNORECASE)


class Parameter(msgspec.Struct, frozen=True, kw_only=True):
    """One parameter an operation takes, with the value it is called with: the document's example when it gives
    one (`given`), else one its schema accepts."""

    name: str
    location: ParameterLocation
    value: str
    given: bool = False


class Promise(msgspec.Struct, frozen=True, kw_only=True):
    """One call the app promises to answer, and the statuses that keep the promise."""

    method: str
    path: str  # a template (`/api/notes/{note_id}`), or requirements.json's concrete path with its query
    expected: list[str]  # as the source spells them: `201`, `2XX`, `default`
    parameters: list[Parameter] = []  # path parameters, and the required query, header and cookie ones
    body: Any = None
    body_kind: BodyKind | None = None
    invented_body: bool = False  # built from the schema, not the source's example: values Assay made up

    @property
    def endpoint(self) -> Endpoint:
        """The promise as the surface knows an endpoint (what recognises a sign-up or log-in route)."""
        names = list(self.body) if isinstance(self.body, dict) else []
        location: Location = "form" if self.body_kind == "form" else "json"
        return Endpoint(
            method=self.method,
            path=self.path.split("?", 1)[0],
            fields=[Field(name=str(name), location=location) for name in names],
        )

    def located(self, location: ParameterLocation) -> list[Parameter]:
        return [parameter for parameter in self.parameters if parameter.location == location]


def kept(expected: list[str], status: int | None) -> bool:
    """Whether an answer with `status` keeps a promise of the `expected` statuses."""
    if status is None:
        return False
    declared = [str(code).upper() for code in expected]
    success = [code for code in declared if code.startswith("2")]
    allowed = success or [code for code in declared if code != "DEFAULT"]
    if "DEFAULT" in declared and not success and status < 500:
        return True
    return any(code == str(status) or code == f"{str(status)[0]}XX" for code in allowed)


def requirement_promises(requirements: Requirements) -> list[Promise]:
    """requirements.json's endpoints, in file order (a POST that creates usually precedes the GET that reads)."""
    return [
        Promise(
            method=endpoint.method,
            path=endpoint.path,
            expected=[str(endpoint.expected_status)],
            body=endpoint.body,
            body_kind="json" if endpoint.body is not None else None,
        )
        for endpoint in requirements.endpoints
    ]


def _statuses(operation: dict[str, Any]) -> list[str]:
    responses = operation.get("responses")
    if not isinstance(responses, dict):
        return []
    # YAML reads `200:` as a number
    return [str(code) for code in responses if STATUS.match(str(code)) or str(code).lower() == "default"]


def _parameters(document: dict[str, Any], declared: list[Any]) -> list[Parameter]:
    """Path parameters, and the required query, header and cookie ones, each with a value."""
    chosen: dict[tuple[str, str], Parameter] = {}
    for node in declared:
        parameter = resolve(document, node)
        if not isinstance(parameter, dict) or parameter.get("in") not in (
            "path",
            "query",
            "header",
            "cookie",
        ):
            continue
        if parameter["in"] != "path" and not parameter.get("required"):
            continue
        name = str(parameter.get("name", ""))
        schema = parameter.get("schema") or parameter  # Swagger 2 puts the type on the parameter itself
        given, example = example_of(parameter)
        if not given:
            given, example = example_of(resolve(document, schema) or {})
        value = example if given else instance(document, schema, name)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        chosen[(name, parameter["in"])] = Parameter(
            name=name, location=parameter["in"], value=text, given=given
        )
    return list(chosen.values())


def _body(
    document: dict[str, Any], operation: dict[str, Any], declared: list[Any]
) -> tuple[Any, BodyKind | None, bool]:
    """The body an operation takes, from its example or schema, how it is sent, and whether Assay made it up
    (built from the schema); (None, None, False) without one."""
    request = resolve(document, operation.get("requestBody"))
    content = request.get("content") if isinstance(request, dict) else None
    if isinstance(content, dict):
        for media, kind in MEDIA:
            if media in content:
                described = resolve(document, content[media]) or {}
                given, example = example_of(described)
                if given:
                    return example, kind, False
                return instance(document, described.get("schema") or {}), kind, True
        return None, None, False
    # Swagger 2: one `in: body` parameter, or `formData` ones
    for node in declared:
        parameter = resolve(document, node)
        if isinstance(parameter, dict) and parameter.get("in") == "body":
            return instance(document, parameter.get("schema") or {}), "json", True
    form = [resolve(document, node) for node in declared]
    fields = {
        str(p.get("name")): instance(document, p, str(p.get("name")))
        for p in form
        if isinstance(p, dict) and p.get("in") == "formData"
    }
    return (fields, "form", True) if fields else (None, None, False)


def _rank(promise: Promise, index: int) -> tuple[int, int, int, int]:
    endpoint = promise.endpoint
    signing = 0 if is_register(endpoint) and not is_login(endpoint) else 1 if is_login(endpoint) else 2
    depth = len(promise.located("path"))
    return (METHOD_ORDER.get(promise.method, 5), signing, depth, index)


def openapi_promises(document: dict[str, Any]) -> list[Promise]:
    """Every operation of an OpenAPI 3 or Swagger 2 document, in the order they are called."""
    base = base_path(document)
    promises = []
    paths = document.get("paths")
    for path, item in (paths if isinstance(paths, dict) else {}).items():
        item = resolve(document, item)
        if not isinstance(item, dict) or not str(path).startswith("/"):
            continue
        shared: list[Any] = item["parameters"] if isinstance(item.get("parameters"), list) else []
        for verb in VERBS:
            operation = item.get(verb)
            if not isinstance(operation, dict):
                continue
            own: list[Any] = operation["parameters"] if isinstance(operation.get("parameters"), list) else []
            declared = [*shared, *own]
            body, kind, invented = _body(document, operation, declared)
            promises.append(
                Promise(
                    method=verb.upper(),
                    path=base + str(path),
                    expected=_statuses(operation) or ["default"],
                    parameters=_parameters(document, declared),
                    body=body,
                    body_kind=kind,
                    invented_body=invented,
                )
            )
    ranked = sorted(enumerate(promises), key=lambda pair: _rank(pair[1], pair[0]))
    return [promise for _, promise in ranked]
