"""The published contracts: generated from the types, committed in sync, a valid AsyncAPI document naming
every subject the code publishes on, JSON Schemas that real messages satisfy, and served by the gateway."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from jsonschema import Draft202012Validator

from shared.jetstream.connection import connect
from shared.jetstream.natsd import EmbeddedNats
from shared.jetstream.streams import declare_streams
from shared.wire import contracts, subjects
from shared.wire.contracts import ANALYZER_FRAMES, CLIENT_FRAMES, EVENT_TYPES, asyncapi, json_schemas, tag_of
from shared.wire.messages import TaskCompleted, TaskStarted, encode
from shared.wire.protocol import AnalyzeFrame, encode_frame
from shared.wire.tasks import TaskRef
from tests.support.gateway import Gateway, gateway_for, gateway_settings, migrate_database

REPO = Path(__file__).resolve().parent.parent
VALIDATOR = REPO / "tests" / "contracts"
TASK = TaskRef(id="task_0123456789ab", model_slug="openai_codex-mini", app_number=1, analysis_type="static")
SUBJECT_SPELLING = re.compile(r"^assay\.(requests|events|control|dlq)\b")


def test_committed_contracts_are_what_the_types_generate() -> None:
    assert contracts.drifted(REPO / contracts.CONTRACTS_DIR) == [], "run `python -m shared.wire.contracts`"


def test_drift_is_noticed(tmp_path: Path) -> None:
    contracts.write(tmp_path)
    assert contracts.drifted(tmp_path) == []
    (tmp_path / "schemas" / "Event.json").write_text("{}")
    (tmp_path / "schemas" / "Gone.json").write_text("{}")
    assert contracts.drifted(tmp_path) == ["schemas/Event.json", "schemas/Gone.json"]


def _validate(document: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None or not (VALIDATOR / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.skip("the AsyncAPI parser needs Node.js and `make install` (npm ci in tests/contracts)")
    return subprocess.run(
        [node, str(VALIDATOR / "validate.mjs"), str(document)], capture_output=True, text=True, timeout=120
    )


def test_the_asyncapi_document_passes_the_asyncapi_parser(tmp_path: Path) -> None:
    checked = _validate(REPO / contracts.CONTRACTS_DIR / contracts.ASYNCAPI_FILE)
    errors = [json.loads(line) for line in checked.stdout.splitlines() if json.loads(line)["severity"] == 0]
    assert checked.returncode == 0 and errors == [], checked.stdout + checked.stderr
    # The parser does refuse a broken document: an operation with an action AsyncAPI 3 does not have.
    broken = asyncapi()
    next(iter(broken["operations"].values()))["action"] = "publish"
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    assert _validate(tmp_path / "broken.json").returncode == 1


def _addresses(function: Callable[..., str]) -> list[str]:
    """The subject templates a function of shared/wire/subjects.py spells: `{name}` for each argument, every event
    kind for `kind`."""
    names = list(inspect.signature(function).parameters)
    kinds = [tag_of(event) for event in EVENT_TYPES] if "kind" in names else [""]
    return [function(*(kind if name == "kind" else f"{{{name}}}" for name in names)) for kind in kinds]


def _matches(template: str, address: str) -> bool:
    """A `{name}` of the template stands for any one token; `priority` in a channel address too."""
    tokens, pattern = template.split("."), address.split(".")
    return len(tokens) == len(pattern) and all(
        a == b or (a.startswith("{") and b.startswith("{")) for a, b in zip(tokens, pattern, strict=True)
    )


def test_every_subject_the_code_publishes_on_has_a_channel() -> None:
    published = [
        function
        for name, function in inspect.getmembers(subjects, inspect.isfunction)
        if name.endswith("_subject") and function.__module__ == subjects.__name__
    ]
    assert {function.__name__ for function in published} >= {
        "request_subject",
        "event_subject",
        "cancel_subject",
    }
    addresses = [channel["address"] for channel in asyncapi()["channels"].values()]
    missing = [
        template
        for function in published
        for template in _addresses(function)
        if not any(_matches(template, address) for address in addresses)
    ]
    assert missing == []
    kinds = {channel["address"].rsplit(".", 1)[-1] for channel in asyncapi()["channels"].values()}
    assert {tag_of(event) for event in EVENT_TYPES} <= kinds


def _subject_spellings(path: Path) -> list[str]:
    """String literals (not docstrings) that spell an Assay subject themselves."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        f"{path.relative_to(REPO)}:{node.lineno}: {node.value}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and SUBJECT_SPELLING.match(node.value)
    ]


def test_only_shared_subjects_spells_a_subject() -> None:
    """So the subjects collected above are all the code publishes on."""
    sources = [path for folder in ("services", "shared") for path in (REPO / folder).rglob("*.py")]
    spelled = [
        found
        for path in sources
        if "node_modules" not in path.parts and path != REPO / "shared" / "wire" / "subjects.py"
        for found in _subject_spellings(path)
    ]
    assert spelled == []


def test_every_operation_names_who_sends_or_receives_and_every_message_has_a_payload() -> None:
    document = asyncapi()
    for key, operation in document["operations"].items():
        assert operation["action"] in ("send", "receive") and operation["tags"], key
    senders = {op["tags"][0]["name"] for op in document["operations"].values() if op["action"] == "send"}
    assert senders == {"gateway", "orchestrator", "persister", "analyzer"}
    messages = document["components"]["messages"]
    every_type = {struct.__name__ for struct in contracts.MESSAGE_TYPES}
    assert set(messages) == every_type
    assert all(message["payload"]["$ref"].endswith(f"/{name}") for name, message in messages.items())
    assert every_type <= set(document["components"]["schemas"])


def _validator(name: str) -> Draft202012Validator:
    schema = json_schemas()[f"{name}.json"]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_json_schemas_are_valid_and_real_messages_satisfy_them() -> None:
    for name in json_schemas():
        _validator(name.removesuffix(".json"))
    events = _validator("Event")
    started = json.loads(encode(TaskStarted(task=TASK, services=["static"], tools=["bandit"])))
    completed = json.loads(encode(TaskCompleted(task=TASK, status="completed", services=["static"])))
    assert events.is_valid(started) and events.is_valid(completed)
    assert not events.is_valid(
        started | {"task": {"id": "task_1"}}
    )  # what the decoder refuses, the schema does
    frames = _validator("ClientFrame")
    assert frames.is_valid(json.loads(encode_frame(AnalyzeFrame(id="task_0123456789ab:static", task=TASK))))
    assert {tag_of(frame) for frame in CLIENT_FRAMES} == {"analyze", "cancel", "health"}
    assert {tag_of(frame) for frame in ANALYZER_FRAMES} == {
        "progress",
        "heartbeat",
        "result",
        "error",
        "shutting_down",
        "health",
    }


def readme_subscriber() -> str:
    """The subscriber the README shows, as it stands there."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Programs subscribing to events", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


async def test_the_readme_subscriber_prints_the_events_it_receives(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    script = tmp_path / "subscriber.py"
    script.write_text(readme_subscriber())
    nc = await connect(nats_server.url, "test-subscriber")
    # What `assay subscriber` prints (this server admits anyone: tests/test_docs_examples.py runs it on `assay up`).
    env = {**os.environ, "NATS_URL": nats_server.url, "NATS_USER": "subscriber", "NATS_PASSWORD": "any"}
    try:
        await declare_streams(nc.jetstream())
        reader = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            line = b""
            for _ in range(100):  # until it has subscribed, a published event is not for it
                event = TaskStarted(task=TASK, services=["static"])
                await nc.jetstream().publish(subjects.event_subject(TASK.id, "started"), encode(event))
                with contextlib.suppress(TimeoutError):
                    line = await asyncio.wait_for(reader.stdout.readline(), 0.2)  # type: ignore[union-attr]
                if line:
                    break
            assert line.decode().split() == ["started", TASK.id, "openai_codex-mini/app1"]
        finally:
            reader.kill()
            await reader.wait()
    finally:
        await nc.close()


@pytest.fixture
async def gateway(tmp_path: Path, nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Gateway]:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url))
    async with gateway_for(settings) as running:
        yield running


async def test_the_gateway_serves_the_contracts(gateway: Gateway) -> None:
    document = await gateway.http.get("/api/contracts/asyncapi.json")
    assert document.status_code == 200 and document.headers["content-type"].startswith("application/json")
    assert document.json() == msgspec.json.decode(contracts.render(asyncapi()))
    schema = await gateway.http.get("/api/contracts/schemas/Event.json")
    expected: Any = msgspec.json.decode(contracts.render(json_schemas()["Event.json"]))
    assert schema.status_code == 200 and schema.json() == expected
    unknown = await gateway.http.get("/api/contracts/schemas/Nothing.json")
    assert unknown.status_code == 404 and "Nothing.json" in unknown.json()["detail"]
