"""Boolean SQL injection is judged by answers that differ with the condition alone, against a real HTTP server on
loopback: a query that evaluates the condition is found; an answer that changes with time, turn about, as when
another check rewrites the record between our requests, is not taken for one (the dynamic stability test once saw
exactly that)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx

from services.analyzers.dynamic.attack_tool import Reach
from services.analyzers.dynamic.attacker import Attacker
from services.analyzers.dynamic.attacks import Point, build
from services.analyzers.dynamic.checks.sqli import boolean_based
from services.analyzers.running_app.surface.model import Endpoint, Field
from services.analyzers.running_app.targets import Sites
from tests.support.query_server import query_server

Answer = Callable[[str], str]  # the query's `q` → the page


def server(answer: Answer) -> AbstractAsyncContextManager[str]:
    async def page(query: dict[str, list[str]]) -> bytes:
        return answer(query.get("q", [""])[0]).encode()

    return query_server(page)


def evaluating(q: str) -> str:
    """A search whose WHERE clause is the input: a true condition finds the rows, a false one none."""
    true = "'1'='1" in q or "1=1" in q
    return (
        '{"items": [{"id": 1, "title": "first"}, {"id": 2, "title": "second"}]}' if true else '{"items": []}'
    )


def turn_about() -> Answer:
    """The input is ignored; the record changes between every two requests (two writers, each in turn)."""
    states = itertools.cycle(['{"note": "first draft, kept"}', '{"note": "second version now"}'])
    return lambda _q: next(states)


async def judged(answer: Answer) -> str | None:
    endpoint = Endpoint(method="GET", path="/search", fields=[Field(name="q", location="query")])
    async with server(answer) as base, httpx.AsyncClient() as client:
        attacker = Attacker(client, Sites(bases={"backend": base}), max_requests=100, max_s=60)
        baseline = await attacker.send(build(endpoint))
        reached = Reach(endpoint=endpoint, session=None, baseline=baseline)
        found = await boolean_based(attacker, reached, Point(endpoint=endpoint, field=endpoint.fields[0]))
    return found.rule_id if found else None


async def test_a_condition_the_query_evaluates_is_found() -> None:
    assert await judged(evaluating) == "sqli-boolean"


async def test_an_answer_that_changes_turn_about_whatever_the_input_is_no_injection() -> None:
    assert await judged(turn_about()) is None
