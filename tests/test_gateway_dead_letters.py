"""The dead letter routes on a real gateway and nats-server: paging, a dead event that cannot be replayed, a dead
request replayed as a new task, and the scope they need. (The end-to-end path, from a crash loop to `assay dlq`, is
tests/test_dead_letters.py.)"""

from __future__ import annotations

from pathlib import Path

from shared.jetstream.natsd import EmbeddedNats
from shared.wire import subjects
from shared.wire.messages import AnalysisRequest, DeadLetter, TaskStarted, decode_request, encode
from shared.wire.tasks import TaskRef, new_task_id
from tests.support.gateway import (
    APP,
    MODEL,
    bearer,
    gateway_for,
    gateway_settings,
    issue_token,
    migrate_database,
)


def task_ref() -> TaskRef:
    return TaskRef(id=new_task_id(), model_slug=MODEL, app_number=APP, analysis_type="static")


def letter_of(message: AnalysisRequest | TaskStarted, stream: str, subject: str) -> DeadLetter:
    return DeadLetter(
        task_id=message.task.id,
        stream=stream,
        subject=subject,
        consumer="somebody",
        deliveries=5,
        reason="given up by the test",
        payload=encode(message).decode(),
    )


async def test_dead_letters_are_paged_shown_and_only_requests_replayed(
    nats_server: EmbeddedNats, tmp_path: Path, database_url: str
) -> None:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url))
    async with gateway_for(settings) as gateway:
        request = AnalysisRequest(task=task_ref(), tools=["bandit"], priority="high")
        event = TaskStarted(
            task=task_ref(), services=["static"], tools=["bandit"], priority="normal", worker="w"
        )
        letters = [
            letter_of(request, subjects.REQUESTS_STREAM, subjects.request_subject("high")),
            letter_of(event, subjects.EVENTS_STREAM, subjects.event_subject(event.task.id, "started")),
            letter_of(request, subjects.REQUESTS_STREAM, subjects.request_subject("high")),
        ]
        for letter in letters:
            await gateway.js.publish(subjects.dlq_subject(letter.stream, "somebody"), encode(letter))

        first = (await gateway.http.get("/api/dlq", params={"limit": 2})).json()
        assert [letter["id"] for letter in first["dead_letters"]] == [1, 2] and first["next_after"] == 2
        rest = (await gateway.http.get("/api/dlq", params={"after": first["next_after"]})).json()
        assert [letter["id"] for letter in rest["dead_letters"]] == [3] and rest["next_after"] is None
        assert first["dead_letters"][1]["task_id"] == event.task.id
        assert first["dead_letters"][1]["deliveries"] == 5 and "payload" not in first["dead_letters"][1]

        shown = (await gateway.http.get("/api/dlq/2")).json()
        assert shown["stream"] == subjects.EVENTS_STREAM and shown["payload"] == letters[1].payload
        refused = await gateway.http.post("/api/dlq/2/replay")
        assert refused.status_code == 409 and "only requests are replayed" in refused.json()["detail"]
        assert (await gateway.http.get("/api/dlq/4")).status_code == 404

        queued_before = await gateway.requests_in_stream()
        replayed = await gateway.http.post("/api/dlq/1/replay")
        assert replayed.status_code == 202, replayed.text
        body = replayed.json()
        assert body["replayed_from"] == 1 and body["original_task_id"] == request.task.id
        assert body["task_id"] != request.task.id and body["priority"] == "high"
        assert await gateway.requests_in_stream() == queued_before + 1
        stored = await gateway.js.get_last_msg(subjects.REQUESTS_STREAM, subjects.request_subject("high"))
        again = decode_request(stored.data or b"")
        assert again.task.id == body["task_id"] and again.tools == ["bandit"]
        assert (again.task.model_slug, again.task.app_number) == (MODEL, APP)

        submitter = await issue_token(database_url, "submitter", "submit")  # below admin
        forbidden = await gateway.http.get("/api/dlq", headers=bearer(submitter))
        assert forbidden.status_code == 403
