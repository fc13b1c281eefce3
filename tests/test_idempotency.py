"""`Idempotency-Key` on `POST /api/analysis/run` and `POST /api/batches`, over a served gateway, a real nats-server
and a real SQLite file: a retry gets the first answer, another body under a used key is a 422 naming the header,
keys are per token, checked, expire, and two requests at once with one key queue one task."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import delete, select, update

from services.gateway.idempotency import WAIT_S, request_digest
from services.gateway.schemas import RunRequest
from shared.jetstream.natsd import EmbeddedNats
from shared.store.database import create_engine, sessions
from shared.store.models import ApiToken, IdempotencyKey
from shared.wire.messages import utcnow
from tests.support.gateway import (
    APP,
    MODEL,
    Gateway,
    bearer,
    gateway_for,
    gateway_settings,
    issue_token,
    migrate_database,
)

KEY = {"Idempotency-Key": "2f1c9a4e-7b1d-4c55-9e0f-6a1b2c3d4e5f"}


@pytest.fixture
async def gateway(tmp_path: Path, nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Gateway]:
    await migrate_database(database_url)
    settings = gateway_settings(tmp_path, nats_server.url, database_url)
    async with gateway_for(settings) as running:
        yield running


def body(**changes: object) -> dict[str, object]:
    return {"model_slug": MODEL, "app_number": APP, "analysis_type": "static", **changes}


async def test_a_retry_with_the_same_key_and_body_returns_the_first_answer_and_queues_once(
    gateway: Gateway,
) -> None:
    first = await gateway.http.post("/api/analysis/run", json=body(tools=["bandit"]), headers=KEY)
    assert first.status_code == 202, first.text
    # The same request spelt differently (key order, spacing) is the same request.
    again = await gateway.http.post(
        "/api/analysis/run",
        content=b'{"tools": ["bandit"],  "analysis_type":"static", "app_number": 1, "model_slug": "openai_codex-mini"}',
        headers={**KEY, "Content-Type": "application/json"},
    )

    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await gateway.requests_in_stream() == 1
    # Without a key every request is new.
    other = await gateway.submit(tools=["bandit"])
    assert other.json()["task_id"] != first.json()["task_id"]
    assert await gateway.requests_in_stream() == 2


async def test_another_body_under_a_used_key_is_a_422_naming_the_header(gateway: Gateway) -> None:
    first = await gateway.http.post("/api/analysis/run", json=body(), headers=KEY)
    assert first.status_code == 202

    changed = await gateway.http.post("/api/analysis/run", json=body(priority="high"), headers=KEY)
    other_route = await gateway.http.post("/api/batches", json={"analysis_types": ["static"]}, headers=KEY)

    for refused in (changed, other_route):
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "Idempotency-Key"
        assert refused.json()["errors"][0]["source"] == "header"
    assert await gateway.requests_in_stream() == 1


@pytest.mark.parametrize("key", ["", "k" * 129, "has space", "semi;colon", "ünï"])
async def test_a_key_outside_the_documented_length_and_characters_is_refused(
    gateway: Gateway, key: str
) -> None:
    response = await gateway.http.post(
        "/api/analysis/run", json=body(), headers={b"Idempotency-Key": key.encode()}
    )

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert response.json()["errors"][0]["source"] == "header"
    assert await gateway.requests_in_stream() == 0


async def test_keys_belong_to_their_token(gateway: Gateway) -> None:
    other_token = await issue_token(gateway.settings.database_url, "other", "submit")

    mine = await gateway.http.post("/api/analysis/run", json=body(), headers=KEY)
    theirs = await gateway.http.post("/api/analysis/run", json=body(), headers={**KEY, **bearer(other_token)})

    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["task_id"] != theirs.json()["task_id"]
    assert await gateway.requests_in_stream() == 2


async def test_requests_at_once_with_one_key_queue_one_task(gateway: Gateway) -> None:
    answers = await asyncio.gather(
        *(gateway.http.post("/api/analysis/run", json=body(), headers=KEY) for _ in range(8))
    )

    assert {answer.status_code for answer in answers} == {202}, [answer.text for answer in answers]
    assert len({answer.json()["task_id"] for answer in answers}) == 1
    assert await gateway.requests_in_stream() == 1


async def test_a_refused_request_leaves_its_key_free_for_the_corrected_retry(gateway: Gateway) -> None:
    app = gateway.settings.apps_dir / MODEL / f"app{APP}"
    shutil.rmtree(app)
    missing = await gateway.http.post("/api/analysis/run", json=body(), headers=KEY)
    assert missing.status_code == 404

    app.mkdir(parents=True)
    retried = await gateway.http.post("/api/analysis/run", json=body(), headers=KEY)

    assert retried.status_code == 202, retried.text
    assert await gateway.requests_in_stream() == 1


async def test_an_expired_key_counts_as_new(
    tmp_path: Path, nats_server: EmbeddedNats, database_url: str
) -> None:
    await migrate_database(database_url)
    settings = msgspec.structs.replace(
        gateway_settings(tmp_path, nats_server.url, database_url), idempotency_ttl_s=0.5
    )
    async with gateway_for(settings) as gateway:
        first = await gateway.http.post("/api/analysis/run", json=body(), headers=KEY)
        await asyncio.sleep(1.0)  # the TTL is the behaviour under test: wait it out
        later = await gateway.http.post("/api/analysis/run", json=body(), headers=KEY)

        assert first.status_code == later.status_code == 202
        assert first.json()["task_id"] != later.json()["task_id"]
        assert "idempotent-replayed" not in later.headers


async def test_a_batch_retried_with_its_key_is_the_same_batch(gateway: Gateway) -> None:
    request = {"models": [MODEL], "analysis_types": ["static", "security"]}
    first = await gateway.http.post("/api/batches", json=request, headers=KEY)
    again = await gateway.http.post("/api/batches", json=request, headers=KEY)

    assert first.status_code == again.status_code == 202, first.text
    assert again.json() == first.json()
    assert len(first.json()["task_ids"]) == 2
    assert await gateway.requests_in_stream() == 2
    refused = await gateway.http.post(
        "/api/batches", json={**request, "analysis_types": ["static"]}, headers=KEY
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_the_key_is_documented_on_both_routes(gateway: Gateway) -> None:
    document = (await gateway.http.get("/schema/openapi.json")).json()

    for path in ("/api/analysis/run", "/api/batches"):
        parameters = document["paths"][path]["post"]["parameters"]
        described = [p for p in parameters if p["name"] == "Idempotency-Key" and p["in"] == "header"]
        assert described and "1-128 characters" in described[0]["description"]


async def claim_left_by_another_gateway(gateway: Gateway, lease_left_s: float, digest: str) -> None:
    """A key claimed and never answered, as a gateway that is still working on it leaves it (its lease
    `lease_left_s` ahead), or one that died mid-request (its lease run out: `lease_left_s` < 0)."""
    engine = create_engine(gateway.settings.database_url)
    try:
        async with sessions(engine)() as session, session.begin():
            token_id = (await session.scalars(select(ApiToken.token_id))).one()
            session.add(
                IdempotencyKey(
                    token_id=token_id,
                    key=KEY["Idempotency-Key"],
                    request_sha256=digest,
                    created_at=utcnow(),
                    held_until=utcnow() + timedelta(seconds=lease_left_s),
                )
            )
    finally:
        await engine.dispose()


async def test_a_key_still_being_handled_answers_409_and_an_abandoned_one_is_taken_over(
    gateway: Gateway,
) -> None:
    digest = request_digest("/api/analysis/run", msgspec.convert(body(), RunRequest))
    await claim_left_by_another_gateway(gateway, 60, digest)

    # It waits WAIT_S for the first request's answer, then gives up.
    busy = await gateway.http.post("/api/analysis/run", json=body(), headers=KEY, timeout=WAIT_S * 4)

    assert busy.status_code == 409, busy.text
    assert "still being handled" in busy.json()["detail"]
    assert await gateway.requests_in_stream() == 0

    async with sessions(engine := create_engine(gateway.settings.database_url))() as session, session.begin():
        await session.execute(delete(IdempotencyKey))
    await engine.dispose()
    await claim_left_by_another_gateway(gateway, -1, digest)

    taken_over = await gateway.http.post("/api/analysis/run", json=body(), headers=KEY)

    assert taken_over.status_code == 202, taken_over.text
    assert await gateway.requests_in_stream() == 1


async def test_a_retry_taking_over_a_dead_gateways_claim_queues_the_same_task_not_a_second(
    gateway: Gateway,
) -> None:
    digest = request_digest("/api/analysis/run", msgspec.convert(body(), RunRequest))
    await claim_left_by_another_gateway(gateway, -1, digest)
    first = await gateway.http.post("/api/analysis/run", json=body(), headers=KEY)
    assert first.status_code == 202, first.text
    # That gateway dies too, after publishing and before storing its answer: the claim is unanswered again.
    engine = create_engine(gateway.settings.database_url)
    async with sessions(engine)() as session, session.begin():
        await session.execute(
            update(IdempotencyKey).values(status_code=None, response=None, location=None, answered_at=None)
        )
    await engine.dispose()

    retried = await gateway.http.post("/api/analysis/run", json=body(), headers=KEY)

    assert retried.status_code == 202, retried.text
    assert retried.json()["task_id"] == first.json()["task_id"]
    assert await gateway.requests_in_stream() == 1  # the same request again: stored once (its Nats-Msg-Id)
