"""The idor check when the object it tests changes under it, against a real notes API on loopback. In a run every
active check works at once, and twelve of them send `PUT /api/notes/1` as user A (the id they guess): when the idor
check's own note is note 1, one of those writes can land between its reads (a loaded machine makes that likely),
and user B's read no longer shows A's text. That is not the app keeping A's note private: the check tries a new
note, and when every note it tries changes, it says it could not judge (a partial run), never "no flaw"."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from services.analyzers.dynamic.attacker import Attacker, TaskBudget
from services.analyzers.dynamic.checks.idor import ATTEMPTS, Idor
from services.analyzers.dynamic.recon import Recon, ReconCache
from services.analyzers.dynamic.users import Session, sign_in
from services.analyzers.running_app.surface.model import Endpoint, Field, Surface
from services.analyzers.running_app.targets import Sites

USERS = {"Bearer token-user-a": "a", "Bearer token-user-b": "b"}
# note id, owner → whether another writer (a sibling check acting as the owner) overwrites it after its owner's
# first read
Overwrite = Callable[[int], bool]


class Notes:
    """A notes API whose reads check that the caller is logged in; `owner_only` also that the note is theirs."""

    def __init__(self, overwrite: Overwrite, *, owner_only: bool = False) -> None:
        self.notes: dict[int, dict[str, Any]] = {}
        self.overwrite = overwrite
        self.owner_only = owner_only
        self.read_by_owner: set[int] = set()
        self.signed_up = 0

    def answer(
        self, method: str, path: str, user: str | None, body: bytes
    ) -> tuple[int, dict[str, Any]] | None:
        """The status and document of an answer; None for a request the app does not answer (what a loaded app's
        late answer is to a client that gave up)."""
        if method == "POST" and path == "/api/users":
            self.signed_up += 1
            return (201, {"username": json.loads(body)["username"]}) if self.signed_up == 1 else None
        if method == "POST" and path == "/api/sessions":
            return 200, {"access_token": "token-user-a"}
        if user is None:
            return 401, {"detail": "log in first"}
        if method == "POST" and path == "/api/notes":
            note_id = len(self.notes) + 1
            self.notes[note_id] = {"id": note_id, "owner": user, **json.loads(body)}
            return 201, self.notes[note_id]
        if method == "GET" and path.startswith("/api/notes/"):
            note_id = int(path.rsplit("/", 1)[1])
            note = self.notes.get(note_id)
            if note is None or self.owner_only and note["owner"] != user:
                return 404, {"detail": "no such note"}
            if note["owner"] == user and note_id not in self.read_by_owner:
                self.read_by_owner.add(note_id)
                if self.overwrite(note_id):
                    # what a sibling check's `PUT /api/notes/1` as the owner does, right after this answer
                    answer = dict(note)
                    note.update(title="sibling title", body="sibling body")
                    return 200, answer
            return 200, note
        return 404, {"detail": "not found"}


@asynccontextmanager
async def serve(notes: Notes) -> AsyncIterator[str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method, path, _ = (await reader.readline()).decode().split(" ", 2)
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        answer = notes.answer(method, path, USERS.get(headers.get("authorization", "")), body)
        if answer is None:
            writer.close()
            return
        status, document = answer
        payload = json.dumps(document).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with listening:
        yield f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}"


SURFACE = Surface(
    endpoints=[
        Endpoint(
            method="POST",
            path="/api/notes",
            fields=[Field(name="title", location="json"), Field(name="body", location="json")],
        ),
        Endpoint(method="GET", path="/api/notes/{note_id}", fields=[Field(name="note_id", location="path")]),
        *(
            Endpoint(
                method="POST",
                path=path,
                fields=[Field(name="username", location="json"), Field(name="password", location="json")],
            )
            for path in ("/api/users", "/api/sessions")
        ),
    ]
)


async def check(notes: Notes, *, sign_up: bool = False) -> tuple[list[Any], str | None, dict[str, Any]]:
    """The idor check's findings, why it could not judge (None when it could) and its metrics; its users are the
    app's two tokens, or with `sign_up` those that signing up and logging in gave (users.py)."""
    async with serve(notes) as base, httpx.AsyncClient() as client:
        sites = Sites(bases={"backend": base})
        attacker = Attacker(client, sites, max_requests=100, max_s=60.0)
        sessions = [Session(name=name, headers={"Authorization": token}) for token, name in USERS.items()]
        auth: dict[str, Any] = {}
        if sign_up:
            sessions, auth = await sign_in(attacker, SURFACE, [])
        recon = Recon(
            sites=sites, surface=SURFACE, sessions=sessions, auth=auth, budget=TaskBudget(100), canary=None
        )
        findings: list[Any] = []
        metrics: dict[str, Any] = {}
        unjudged = await Idor(ReconCache()).attack(recon, attacker, findings, metrics)
        return findings, unjudged, metrics


async def test_a_note_a_sibling_check_overwrites_is_tried_again_and_the_flaw_is_proven_on_a_new_one() -> None:
    findings, unjudged, _ = await check(Notes(lambda note_id: note_id == 1))
    assert unjudged is None
    (finding,) = findings
    assert finding.rule_id == "idor-read" and finding.severity == "high"
    assert finding.proof is not None and finding.proof.exchanges[-1].path == "/api/notes/2"


async def test_when_every_note_changes_under_the_check_it_says_it_could_not_judge() -> None:
    findings, unjudged, metrics = await check(Notes(lambda note_id: True))
    assert findings == []
    assert unjudged is not None and "changed while the check read it" in unjudged
    assert f"on each of {ATTEMPTS} objects" in unjudged and metrics["unjudged"] == [unjudged]


async def test_a_note_kept_private_is_judged_no_flaw_without_a_second_try() -> None:
    notes = Notes(lambda note_id: False, owner_only=True)
    findings, unjudged, _ = await check(notes)
    assert (findings, unjudged) == ([], None)
    assert list(notes.notes) == [1]


async def test_a_second_user_whose_sign_up_went_unanswered_leaves_the_check_unjudged_not_clean() -> None:
    findings, unjudged, metrics = await check(Notes(lambda note_id: False), sign_up=True)
    assert findings == [] and "skipped" in metrics
    assert unjudged is not None and unjudged.startswith(
        "needs two users: the registered accounts gave 1 session"
    )
    assert "register_b" in unjudged
