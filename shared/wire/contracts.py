"""Contracts for programs that subscribe to Assay, generated from the msgspec types the services use.

`python -m shared.wire.contracts` writes `docs/contracts/asyncapi.json` (an AsyncAPI 3.0 document of every NATS
subject and the analyzer WebSocket protocol: who publishes, who consumes, the payload of each kind) and one
JSON Schema per message and frame under `docs/contracts/schemas/`; `--check` only compares and exits 1 when
the committed files have drifted from the types. The gateway serves the same documents under
`/api/contracts/`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import msgspec

from shared.wire import subjects
from shared.wire.messages import PRIORITIES, SCHEMA_VERSION, AnalysisRequest, CancelRequest, DeadLetter, Event
from shared.wire.protocol import PROTOCOL_VERSION, AnalyzerFrame, ClientFrame

JsonObject = dict[str, Any]

# The members of each tagged union, in its order: a new event kind or frame type is in the contracts at once.
EVENT_TYPES: tuple[type[msgspec.Struct], ...] = get_args(Event)
CLIENT_FRAMES: tuple[type[msgspec.Struct], ...] = get_args(ClientFrame)
ANALYZER_FRAMES: tuple[type[msgspec.Struct], ...] = get_args(AnalyzerFrame)
MESSAGE_TYPES: tuple[type[msgspec.Struct], ...] = (
    AnalysisRequest,
    CancelRequest,
    *EVENT_TYPES,
    DeadLetter,
    *CLIENT_FRAMES,
    *ANALYZER_FRAMES,
)
# The tagged unions a consumer decodes at its edge: a schema each, beside the schema of every member.
UNIONS: dict[str, Any] = {"Event": Event, "ClientFrame": ClientFrame, "AnalyzerFrame": AnalyzerFrame}

CONTRACTS_DIR = Path("docs") / "contracts"
ASYNCAPI_FILE = "asyncapi.json"
SCHEMAS_DIR = "schemas"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def tag_of(struct: type[msgspec.Struct]) -> str:
    """The `kind` of an event or the `type` of a frame."""
    return str(struct.__struct_config__.tag)


def json_schemas() -> dict[str, JsonObject]:
    """`<Name>.json` → a standalone JSON Schema (2020-12) for every message, frame and tagged union."""
    named: dict[str, Any] = {struct.__name__: struct for struct in MESSAGE_TYPES} | UNIONS
    return {
        f"{name}.json": {"$schema": JSON_SCHEMA_DIALECT, "title": name} | msgspec.json.schema(kind)
        for name, kind in named.items()
    }


@dataclass(frozen=True)
class _Channel:
    """A subject (or the analyzer socket), its stream, its messages and who sends and receives them."""

    key: str
    address: str
    description: str
    messages: tuple[type[msgspec.Struct], ...]
    senders: tuple[str, ...]
    receivers: tuple[str, ...]
    parameters: tuple[tuple[str, JsonObject], ...] = ()
    server: str = "nats"
    stream: str | None = None


_TASK_ID = ("task_id", {"description": "The task's id, `task_<12 hex>`."})
_EVENT_RECEIVERS = ("persister", "gateway")


def _channels() -> list[_Channel]:
    events = [
        _Channel(
            key=f"events_{tag_of(event)}",
            address=subjects.event_subject("{task_id}", tag_of(event)),
            description=f"`{tag_of(event)}` events of a task. {event.__doc__ or ''}".strip(),
            messages=(event,),
            senders=("orchestrator",),
            receivers=_EVENT_RECEIVERS,
            parameters=(_TASK_ID,),
            stream=subjects.EVENTS_STREAM,
        )
        for event in EVENT_TYPES
    ]
    return [
        _Channel(
            key="requests",
            address=subjects.REQUESTS_ALL.replace("*", "{priority}"),
            description="Analysis requests, one durable consumer per priority (urgent first).",
            messages=(AnalysisRequest,),
            senders=("gateway",),
            receivers=("orchestrator", "persister"),
            parameters=(("priority", {"enum": list(PRIORITIES), "description": "The request's priority."}),),
            stream=subjects.REQUESTS_STREAM,
        ),
        *events,
        _Channel(
            key="cancel",
            address=subjects.cancel_subject("{task_id}"),
            description="Core NATS (no stream): tells the orchestrator running the task to cancel it.",
            messages=(CancelRequest,),
            senders=("gateway",),
            receivers=("orchestrator",),
            parameters=(_TASK_ID,),
        ),
        _Channel(
            key="dead_letters",
            address=subjects.dlq_subject("{stream}", "{consumer}"),
            description="Messages given up on, with where they came from and why.",
            messages=(DeadLetter,),
            senders=("orchestrator", "persister"),
            receivers=("operator",),
            parameters=(
                ("stream", {"description": "The stream the message came from, lower case."}),
                ("consumer", {"description": "The durable consumer that gave it up."}),
            ),
            stream=subjects.DLQ_STREAM,
        ),
        _Channel(
            key="analyzer_client_frames",
            address="/",
            description="Analyzer protocol: frames the orchestrator sends to an analyzer (JSON text frames).",
            messages=CLIENT_FRAMES,
            senders=("orchestrator",),
            receivers=("analyzer",),
            server="analyzer",
        ),
        _Channel(
            key="analyzer_frames",
            address="/",
            description=(
                "Analyzer protocol: frames an analyzer sends back, each echoing the run's `id`; "
                "`result` or `error` ends a run."
            ),
            messages=ANALYZER_FRAMES,
            senders=("analyzer",),
            receivers=("orchestrator",),
            server="analyzer",
        ),
    ]


def _ref(kind: str, name: str) -> JsonObject:
    return {"$ref": f"#/{kind}/{name}"}


def _channel_document(channel: _Channel) -> JsonObject:
    document: JsonObject = {
        "address": channel.address,
        "description": channel.description,
        "servers": [_ref("servers", channel.server)],
        "messages": {m.__name__: _ref("components/messages", m.__name__) for m in channel.messages},
    }
    if channel.parameters:
        document["parameters"] = dict(channel.parameters)
    if channel.stream:
        document["x-jetstream-stream"] = channel.stream
    return document


def _operations(channel: _Channel) -> dict[str, JsonObject]:
    messages = [_ref(f"channels/{channel.key}/messages", m.__name__) for m in channel.messages]
    sides = [("send", who) for who in channel.senders] + [("receive", who) for who in channel.receivers]
    return {
        f"{who}_{action}s_{channel.key}": {
            "action": action,
            "channel": _ref("channels", channel.key),
            "summary": f"{who} {action}s on {channel.address}",
            "tags": [{"name": who}],
            "messages": messages,
        }
        for action, who in sides
    }


def _message(struct: type[msgspec.Struct]) -> JsonObject:
    message: JsonObject = {
        "name": struct.__name__,
        "title": tag_of(struct),
        "contentType": "application/json",
        "payload": _ref("components/schemas", struct.__name__),
    }
    if struct.__doc__:
        message["summary"] = " ".join(struct.__doc__.split())
    return message


def asyncapi() -> JsonObject:
    """The AsyncAPI 3.0 document of Assay's subjects, streams and analyzer protocol."""
    channels = _channels()
    _, schemas = msgspec.json.schema_components(MESSAGE_TYPES, ref_template="#/components/schemas/{name}")
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Assay events, requests and analyzer protocol",
            "version": f"messages {SCHEMA_VERSION}, protocol {PROTOCOL_VERSION}",
            "description": (
                "Generated from the msgspec types by `python -m shared.wire.contracts`. Every NATS message is JSON with "
                "`schema_version`, `event_id` (also its `Nats-Msg-Id` header) and `occurred_at`, and a "
                "`traceparent` header; a request or event names its task as one `task` object."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "The NATS server of ASSAY_NATS_URL (with JetStream).",
            },
            "analyzer": {
                "host": "127.0.0.1:8101",
                "protocol": "ws",
                "description": "An analyzer replica (ASSAY_<ANALYZER>_URLS); each analyzer listens on its own port.",
            },
        },
        "channels": {channel.key: _channel_document(channel) for channel in channels},
        "operations": {key: op for channel in channels for key, op in _operations(channel).items()},
        "components": {
            "schemas": schemas,
            "messages": {struct.__name__: _message(struct) for struct in MESSAGE_TYPES},
        },
    }


def render(document: JsonObject) -> bytes:
    """How every contract file is written: indented JSON, ending in a newline."""
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


def contract_files() -> dict[str, bytes]:
    """Every file of the contracts folder (relative path → content)."""
    files = {ASYNCAPI_FILE: render(asyncapi())}
    files.update({f"{SCHEMAS_DIR}/{name}": render(schema) for name, schema in json_schemas().items()})
    return files


def drifted(folder: Path) -> list[str]:
    """Files of `folder` that differ from the types (missing, changed, or no longer generated)."""
    expected = contract_files()
    present = {path.relative_to(folder).as_posix() for path in folder.rglob("*.json")}
    changed = [
        name
        for name, data in expected.items()
        if not (folder / name).is_file() or (folder / name).read_bytes() != data
    ]
    return sorted(changed + [name for name in present if name not in expected])


def write(folder: Path) -> None:
    """Write the contracts into `folder`, removing files no type produces any more."""
    expected = contract_files()
    for stale in folder.rglob("*.json"):
        if stale.relative_to(folder).as_posix() not in expected:
            stale.unlink()
    for name, data in expected.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def main(argv: list[str]) -> int:
    """`python -m shared.wire.contracts [--check]`, from the repository root (2 for any other argument, writing
    nothing)."""
    if argv not in ([], ["--check"]):
        print("usage: python -m shared.wire.contracts [--check]", file=sys.stderr)
        return 2
    if argv:
        stale = drifted(CONTRACTS_DIR)
        for name in stale:
            print(
                f"{CONTRACTS_DIR / name} differs from the types: run `python -m shared.wire.contracts`",
                file=sys.stderr,
            )
        return 1 if stale else 0
    write(CONTRACTS_DIR)
    print(f"contracts written to {CONTRACTS_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
