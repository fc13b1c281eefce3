"""The endpoint check (the `works` verdict's evidence) on the promises of an OpenAPI document: the calls built from a
document (order, parameters, bodies from examples or minimal valid instances, the statuses that keep a promise), and
the check run by the dynamic analyzer against small apps of the tests' own (tests/promise_apps), each started by the
app runner in its sandbox: a FastAPI app judged by the `/openapi.json` it serves and a Flask app by the
`openapi.yaml` it ships, each beside a broken twin that answers one promised operation wrongly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.analyzers.dynamic.identifiers import Known
from services.analyzers.dynamic.instances import instance
from services.analyzers.dynamic.promises import kept, openapi_promises
from services.persister.document import Ending
from services.persister.judgement import works
from services.persister.staging import StagedService
from shared.operations.config import Settings
from shared.wire.protocol import ServiceResult
from tests.support.analyzers import start_analyzer, stop
from tests.support.apps import needs_bwrap, runner_settings
from tests.support.corpus import analyze, describe

PROMISE_APPS = Path(__file__).resolve().parent / "promise_apps"
ENDED = Ending("completed", None, datetime(2026, 12, 6, tzinfo=UTC))

NOTES_DOCUMENT = """
openapi: 3.1.0
info: {title: notes, version: "1"}
paths:
  /api/notes/{note_id}:
    parameters:
      - {name: note_id, in: path, required: true, schema: {type: integer}}
    delete:
      responses: {204: {description: gone}}
    get:
      parameters:
        - {name: fields, in: query, schema: {type: string}}
        - {name: X-Tenant, in: header, required: true, schema: {type: string, example: acme}}
      responses: {200: {description: the note}, 404: {description: none}}
  /api/notes:
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/NoteIn'}
      responses: {201: {description: created}, 422: {description: invalid}}
  /api/sign-in:
    post:
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              required: [username, password]
              properties: {username: {type: string}, password: {type: string, minLength: 12}}
      responses: {default: {description: whatever happens}}
  /api/register:
    post:
      requestBody:
        content:
          application/json:
            example: {username: given, password: from-the-document}
      responses: {201: {description: welcome}}
components:
  schemas:
    Stamp:
      type: object
      properties:
        created: {type: string, format: date-time, readOnly: true}
        tags: {type: array, items: {type: string, enum: [work, home]}, minItems: 2}
    NoteIn:
      allOf:
        - $ref: '#/components/schemas/Stamp'
        - type: object
          required: [title, priority, tags]
          properties:
            title: {type: string, maxLength: 3}
            priority: {type: integer, exclusiveMinimum: 3, maximum: 9}
            colour: {type: string}
"""


def test_a_promise_is_kept_by_a_status_the_document_declares_2xx_when_it_declares_one() -> None:
    assert kept(["200"], 200) and not kept(["200"], 201)
    assert kept(["201", "404"], 201) and not kept(["201", "404"], 404)  # a 2xx is declared: only it keeps it
    assert kept(["2XX"], 204) and not kept(["2XX"], 302)
    assert kept(["404", "409"], 409) and not kept(
        ["404", "409"], 200
    )  # no 2xx declared: one of those declared
    assert kept(["default"], 404) and not kept(["default"], 500)  # only `default`: any answer below 500
    assert not kept(["200"], None)  # no answer keeps no promise


def test_operations_are_called_signing_up_first_creating_before_reading_and_deleting_last() -> None:
    document = yaml.safe_load(NOTES_DOCUMENT)
    called = [(p.method, p.path) for p in openapi_promises(document)]
    assert called == [
        ("POST", "/api/register"),
        ("POST", "/api/sign-in"),
        ("POST", "/api/notes"),
        ("GET", "/api/notes/{note_id}"),
        ("DELETE", "/api/notes/{note_id}"),
    ]


def test_each_call_is_built_from_the_documents_examples_else_a_minimal_valid_instance() -> None:
    document = yaml.safe_load(NOTES_DOCUMENT)
    promises = {(p.method, p.path): p for p in openapi_promises(document)}

    register = promises[("POST", "/api/register")]
    assert register.body == {"username": "given", "password": "from-the-document"}  # the media type's example
    assert register.expected == ["201"]  # YAML reads `201:` as a number; kept as the document spells it

    sign_in = promises[("POST", "/api/sign-in")]
    assert sign_in.body_kind == "form" and sign_in.expected == ["default"]
    assert set(sign_in.body) == {"username", "password"} and len(sign_in.body["password"]) >= 12

    note = promises[("POST", "/api/notes")].body
    # allOf folded, required only, the read-only stamp left out, bounds kept (exclusiveMinimum 3 of OpenAPI 3.1)
    assert set(note) == {"title", "priority", "tags"}
    assert len(note["title"]) <= 3 and note["priority"] == 4 and note["tags"] == ["work", "work"]

    read = promises[("GET", "/api/notes/{note_id}")]
    # path parameters always, query and header ones when required (the header's example), optional ones never
    assert [(p.name, p.location, p.value, p.given) for p in read.parameters] == [
        ("note_id", "path", "1", False),
        ("X-Tenant", "header", "acme", True),
    ]


def test_a_swagger_2_document_gives_its_base_path_body_and_form_parameters() -> None:
    document = {
        "swagger": "2.0",
        "basePath": "/v1/",
        "paths": {
            "/pets": {
                "post": {
                    "parameters": [
                        {"in": "body", "name": "pet", "schema": {"$ref": "#/definitions/Pet"}},
                    ],
                    "responses": {"200": {"description": "added"}, "405": {"description": "invalid"}},
                },
            },
            "/pets/{petId}/photo": {
                "put": {
                    "parameters": [
                        {"in": "path", "name": "petId", "type": "integer", "required": True},
                        {"in": "formData", "name": "caption", "type": "string", "minLength": 7},
                    ],
                    "responses": {"default": {"description": "whatever"}},
                },
            },
        },
        "definitions": {
            "Pet": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
        },
    }
    add, photo = openapi_promises(document)
    assert (add.method, add.path, add.expected, add.body_kind) == ("POST", "/v1/pets", ["200", "405"], "json")
    assert set(add.body) == {"name"} and add.invented_body
    assert (photo.path, photo.body_kind, photo.expected) == ("/v1/pets/{petId}/photo", "form", ["default"])
    assert len(photo.body["caption"]) >= 7 and [p.name for p in photo.located("path")] == ["petId"]


def test_a_minimal_instance_honours_formats_choices_and_nullable_types() -> None:
    schema = {
        "type": "object",
        "required": ["email", "when", "state", "owner", "ratio"],
        "properties": {
            "email": {"type": "string", "format": "email"},
            "when": {"type": "string", "format": "date"},
            "state": {"enum": [None, "open", "closed"]},
            "owner": {"anyOf": [{"type": "null"}, {"type": "string", "minLength": 6}]},
            "ratio": {"type": ["number", "null"], "minimum": 0.5, "maximum": 0.75},
        },
    }
    value: dict[str, Any] = instance({}, schema)
    assert value["email"].endswith("@example.com") and value["when"] == "2024-01-01"
    assert value["state"] == "open" and len(value["owner"]) >= 6 and 0.5 <= value["ratio"] <= 0.75
    cyclic = {
        "components": {
            "schemas": {
                "Node": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Node"}}}
            }
        }
    }
    assert isinstance(
        instance(cyclic, {"$ref": "#/components/schemas/Node"}), dict
    )  # ends, though the schema does not


def test_an_object_the_app_named_is_what_later_calls_address() -> None:
    known = Known()
    known.remember("GET", "/api/recipes", '{"recipes": ["omelette", "pancakes"]}')
    known.remember("GET", "/api/notes", '[{"note_id": 7, "title": "a"}]')
    known.remember("POST", "/api/notes", '{"note": {"id": 9, "owner": 3}}')  # a POST's new object wins
    known.remember("GET", "/api/notes", '[{"id": 1}]')  # a listing after it does not replace it
    known.remember("DELETE", "/api/tags", '{"id": 4}')  # only creating and listing name an object
    assert known.in_path("/api/recipes/{slug}", "slug") == "omelette"
    assert known.in_path("/api/notes/{note_id}/comments", "note_id") == "9"
    assert known.in_path("/api/tags/{tag}", "tag") is None
    # a query parameter naming an object takes one of the nearest collection; a search term never does
    assert known.in_query("/api/recipes/print", "recipe") == "omelette"
    assert known.in_query("/api/recipes/print", "q") is None


# ---- the check against running apps ----


@pytest.fixture(scope="module")
def promise_analyzer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, process = start_analyzer("dynamic", tmp_path_factory.mktemp("dynamic"), apps_dir=PROMISE_APPS)
    yield url
    stop(process)


@pytest.fixture(scope="module")
def promise_settings(tmp_path_factory: pytest.TempPathFactory, app_work_dir: Path) -> Settings:
    return runner_settings(tmp_path_factory.mktemp("promise-apps"), PROMISE_APPS, app_work_dir)


def outcomes(result: ServiceResult) -> dict[str, tuple[str, int | None]]:
    return {
        f"{r['method']} {r['path']}": (r["outcome"], r["actual_status"])
        for r in result.metrics["endpoints"]["results"]
    }


def verdict_of(result: ServiceResult) -> Any:
    return works(ENDED, [StagedService(service="dynamic", status="success", event_id="e", result=result)])


@needs_bwrap
@pytest.mark.parametrize(
    ("model", "document", "broken", "wrong_status", "unverified"),
    [
        # the import takes only the library's catalogues: it refuses the link Assay made up (400)
        ("served-fastapi", "GET /openapi.json", "GET /api/books/{book_id}", 500, {"POST /api/imports"}),
        # no supplier is recorded, so the id asked for is Assay's guess (404); the price service is outside the
        # sandbox (502): neither is held against the app
        (
            "shipped-flask",
            "openapi.yaml",
            "GET /api/items/search",
            500,
            {"GET /api/suppliers/{supplierId}", "GET /api/prices"},
        ),
    ],
)
async def test_the_check_judges_an_app_by_its_openapi_document_and_catches_the_broken_twin(
    promise_analyzer: str,
    promise_settings: Settings,
    model: str,
    document: str,
    broken: str,
    wrong_status: int,
    unverified: set[str],
) -> None:
    working = await analyze(promise_analyzer, promise_settings, model, 1, ["endpoints"])
    twin = await analyze(promise_analyzer, promise_settings, model, 2, ["endpoints"])

    for result in (working, twin):
        assert [(run.tool, run.status) for run in result.tools] == [("endpoints", "success")], describe(
            result
        )
        metrics = result.metrics["endpoints"]
        assert (metrics["source"], metrics["document"]) == ("openapi", document)
        assert {
            call for call, (outcome, _) in outcomes(result).items() if outcome == "unverified"
        } == unverified
        assert metrics["total"] + metrics["unverified"] == metrics["declared"] >= 7
    good, bad = outcomes(working), outcomes(twin)
    assert all(outcome != "failed" for outcome, _ in good.values()), working.metrics["endpoints"]["results"]
    failed = {call for call, (outcome, _) in bad.items() if outcome == "failed"}
    assert failed == {broken}, str(twin.metrics["endpoints"]["results"])
    assert bad[broken][1] == wrong_status

    (mismatch,) = twin.findings
    method, path = broken.split(" ", 1)
    assert (mismatch.rule_id, mismatch.severity, mismatch.path) == (
        "endpoint-mismatch",
        "medium",
        f"backend:{path}",
    )
    assert mismatch.extra["source"] == "openapi" and mismatch.extra["actual_status"] == wrong_status
    assert working.findings == []

    works_verdict = verdict_of(working)
    assert works_verdict.answer == "yes", works_verdict.reason
    assert f"declared endpoints answered as promised ({document})" in works_verdict.reason
    assert all(call in works_verdict.reason for call in unverified)  # named as not verified
    broken_verdict = verdict_of(twin)
    assert broken_verdict.answer == "no" and broken in broken_verdict.reason
    assert broken_verdict.findings == [mismatch.fingerprint]


@needs_bwrap
async def test_calls_that_need_a_user_are_made_as_the_user_the_apps_own_sign_up_and_log_in_gave(
    promise_analyzer: str, promise_settings: Settings
) -> None:
    result = await analyze(promise_analyzer, promise_settings, "served-fastapi", 1, ["endpoints"])
    calls = {f"{r['method']} {r['path']}": r for r in result.metrics["endpoints"]["results"]}
    assert not calls["POST /api/signup"]["as_user"] and not calls["POST /api/login"]["as_user"]
    assert calls["POST /api/books"]["as_user"] and calls["POST /api/books"]["actual_status"] == 201
    # the book the POST created is the one read, changed and deleted (an id guessed would be a 404)
    created = calls["GET /api/books/{book_id}"]["called"]
    assert created == calls["DELETE /api/books/{book_id}"]["called"] and created.rsplit("/", 1)[1].isdigit()
    assert calls["DELETE /api/books/{book_id}"]["actual_status"] == 204
    assert calls["GET /api/search"]["called"].startswith("/api/search?q=")
