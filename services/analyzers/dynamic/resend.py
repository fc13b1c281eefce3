"""Sending a finding's proof again (`assay replay <task> <finding>`): its exchanges in order, against a running
instance of the app, and whether what the check saw still holds (its expectation, `extra.replay`).

A fresh instance issues fresh sessions and ids: what an earlier answer of the proof gave (a cookie's value, a bearer
token, an object's id) is replaced in the later requests by what the same answer gives now, and the marker
listener's address by the current one.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import msgspec

from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import Attack
from services.analyzers.dynamic.canary import Canary
from services.analyzers.dynamic.expectations import Expectation, holds
from services.analyzers.dynamic.users import cookies_set, token_in
from services.analyzers.running_app.targets import Sites
from shared.results.findings import Exchange, Proof

CANARY_URL = re.compile(r"http://127\.0\.0\.1:\d+(?=/assay-ssrf-)")
IDS = re.compile(r'"(id|_id|uuid|\w+_id)"\s*:\s*"?([\w-]+)"?')
MAX_REQUESTS = 200
SETTLE_S = 0.5


class Replayed(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome: whether the finding still holds, and each answer's status and time."""

    holds: bool
    statuses: list[int | None]
    elapsed_s: list[float]


def _learn(substitutions: dict[str, str], exchange: Exchange, sent: Sent) -> None:
    """Old value → new value of what this answer issues: cookies, a bearer token, object ids."""
    old_cookie = exchange.response_headers.get("set-cookie", "")
    new_cookies = cookies_set(sent)
    name, _, value = old_cookie.split(";", 1)[0].partition("=")
    if value and name.strip() in new_cookies:
        substitutions[value.strip()] = new_cookies[name.strip()]
    old_token, new_token = token_in(exchange.response_excerpt), token_in(sent.text)
    if old_token and new_token:
        substitutions[old_token] = new_token
    old_ids, new_ids = dict(IDS.findall(exchange.response_excerpt)), dict(IDS.findall(sent.text))
    for key, old in old_ids.items():
        if key in new_ids and len(old) >= 1 and old != new_ids[key]:
            substitutions[old] = new_ids[key]


def _apply(text: str, substitutions: dict[str, str], canary: Canary | None) -> str:
    for old, new in substitutions.items():
        if len(old) >= 6:  # a token or cookie: anywhere
            text = text.replace(old, new)
        else:  # a short id: only as a whole path segment or JSON value
            text = re.sub(rf"(?<=/){re.escape(old)}(?=[/?]|$)", new, text)
    if canary is not None:
        text = CANARY_URL.sub(canary.base, text)
    return text


async def resend(
    client: httpx.AsyncClient,
    sites: Sites,
    proof: Proof,
    expectation: Expectation,
    canary: Canary | None = None,
) -> Replayed:
    """Send `proof`'s exchanges to `sites` and judge them by `expectation`."""
    attacker = Attacker(client, sites, max_requests=MAX_REQUESTS, max_s=600.0)
    substitutions: dict[str, str] = {}
    answers: list[Sent] = []
    for exchange in proof.exchanges:
        attack = Attack(
            method=exchange.method,
            target=exchange.target if exchange.target in sites.bases else "backend",
            path=_apply(exchange.path, substitutions, canary),
            headers={k: _apply(v, substitutions, canary) for k, v in exchange.headers.items()},
            body=_apply(exchange.body, substitutions, canary) if exchange.body is not None else None,
            timeout_s=max(10.0, (exchange.elapsed_s or 0) * 3),
        )
        sent = await attacker.send(attack)
        _learn(substitutions, exchange, sent)
        answers.append(sent)
    hits = None
    if canary is not None:
        await asyncio.sleep(SETTLE_S)
        hits = await canary.hits(client)
    return Replayed(
        holds=holds(expectation, list(answers), hits),
        statuses=[sent.status for sent in answers],
        elapsed_s=[round(sent.elapsed_s, 3) for sent in answers],
    )
