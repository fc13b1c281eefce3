"""Who may do what on the embedded NATS server: one user per service, each allowed only the subjects its job needs.

The supervisor generates a password per user at every start, writes them to `<var>/nats-credentials.json`
(mode 0600) and into the server's configuration (mode 0600), declares the streams, buckets and durables as
`admin`, and hands each service its own `user:password` in the ASSAY_NATS_CREDS variable of the child's
environment (never on a command line). Nobody but the orchestrator may publish task events; a client without a
user and password cannot connect at all. `subscriber` is for programs outside Assay that follow its events
(`assay subscriber`): it may read them and nothing else.

Permissions name JetStream API subjects exactly ($JS.API.<verb>.<stream>[.<consumer>]). A NATS wildcard is a whole
token, never part of one (`sse-*` would match only a consumer named so), and the body of a create request may name
any consumer: a right to `$JS.API.CONSUMER.CREATE.<stream>` is a right to rewrite every durable of that stream
(filter, max deliveries, ack wait), and a right to `…DELETE.<stream>.*` one to delete them. So no service may create
or delete a consumer on a stream that has durables: the admin declared them all, the services look them up,
fetch, ack and publish, and the gateway reads events by stream sequence (services/gateway/api/tasks/events.py). The only
consumers a service makes are the ordered ones that read an object back, on the object store's stream, which has no
durable. Each user's request replies come back under `_INBOX_<user>.` (see shared/jetstream/connection.py). The table in
docs/ARCHITECTURE.md ("NATS users") gives every grant with its reason.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from pathlib import Path

import msgspec

from shared.jetstream.connection import inbox_prefix
from shared.jetstream.streams import KV_STREAM, OBJECT_STREAM
from shared.store.atomic_file import write_private
from shared.wire import subjects
from shared.wire.messages import PRIORITIES
from shared.wire.subjects import orchestrator_durable

ADMIN = "admin"
GATEWAY = "gateway"
ORCHESTRATOR = "orchestrator"
PERSISTER = "persister"
SUBSCRIBER = "subscriber"
USERS = (ADMIN, GATEWAY, ORCHESTRATOR, PERSISTER, SUBSCRIBER)

API = "$JS.API"
ASSAY_STREAMS = (
    subjects.REQUESTS_STREAM,
    subjects.EVENTS_STREAM,
    subjects.DLQ_STREAM,
    subjects.ADVISORIES_STREAM,
)


class Rule(msgspec.Struct, frozen=True):
    allow: list[str]


class Permissions(msgspec.Struct, frozen=True):
    publish: Rule
    subscribe: Rule


def _stream_info(*streams: str) -> list[str]:
    return [f"{API}.STREAM.INFO.{stream}" for stream in streams]


def _read_messages(stream: str) -> list[str]:
    """Reading single messages of a stream (key-value `get`, object-store metadata, `get_last_msg`)."""
    return [f"{API}.STREAM.MSG.GET.{stream}", f"{API}.DIRECT.GET.{stream}", f"{API}.DIRECT.GET.{stream}.>"]


def _ordered_consumers(stream: str) -> list[str]:
    """Ephemeral ordered push consumers on `stream` (one with no durable): create them and answer their flow
    control (the server drops each once its reader unsubscribed: nats-py deletes none)."""
    return [f"{API}.CONSUMER.CREATE.{stream}", f"$JS.FC.{stream}.>"]


def _pull(stream: str, durable: str) -> list[str]:
    """Binding to an existing durable pull consumer: look it up, fetch, and settle what it delivers."""
    return [
        f"{API}.CONSUMER.INFO.{stream}.{durable}",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


def _tasks_keys(*prefixes: str) -> list[str]:
    """Writing (putting, deleting) keys of the tasks bucket that start with one of `prefixes`."""
    return [f"$KV.{subjects.TASKS_BUCKET}.{prefix}.*" for prefix in prefixes]


def _user(name: str, publish: list[str], subscribe: tuple[str, ...] = ()) -> Permissions:
    return Permissions(publish=Rule(publish), subscribe=Rule([f"{inbox_prefix(name)}.>", *subscribe]))


PERMISSIONS: dict[str, Permissions] = {
    ADMIN: Permissions(publish=Rule([">"]), subscribe=Rule([">"])),
    GATEWAY: _user(
        GATEWAY,
        [
            subjects.REQUESTS_ALL,  # accepted requests
            subjects.CANCEL_ALL,  # cancel requests (core NATS)
            *_tasks_keys("accepted", "batch", "cancel"),  # its records in the tasks bucket
            *_stream_info(
                *ASSAY_STREAMS, KV_STREAM
            ),  # looked up at start (shared/jetstream/streams.declare_streams)
            *_read_messages(KV_STREAM),  # a task or batch record, read back
            f"{API}.STREAM.MSG.GET.{subjects.EVENTS_STREAM}",  # the SSE route reads a task's events by sequence
            f"{API}.STREAM.MSG.GET.{subjects.DLQ_STREAM}",  # the dead letter routes (admin) read it
        ],
        (subjects.EVENTS_ALL,),  # the SSE route's doorbell: a new event of the task was published
    ),
    ORCHESTRATOR: _user(
        ORCHESTRATOR,
        [
            subjects.EVENTS_ALL,  # the only publisher of task events
            subjects.DLQ_ALL,  # a poison request, with its reason
            *_stream_info(*ASSAY_STREAMS, KV_STREAM, OBJECT_STREAM),  # looked up at start
            *(
                p
                for priority in PRIORITIES
                for p in _pull(subjects.REQUESTS_STREAM, orchestrator_durable(priority))
            ),
            *_read_messages(subjects.EVENTS_STREAM),  # has the task ended already?
            *_read_messages(KV_STREAM),  # cancel markers
            f"$O.{subjects.ARTIFACTS_BUCKET}.>",  # large results go to the object store
            *_read_messages(OBJECT_STREAM),  # … whose put looks the object's metadata up
            f"{API}.STREAM.PURGE.{OBJECT_STREAM}",  # replacing an object purges its old chunks
        ],
        (subjects.CANCEL_ALL,),
    ),
    PERSISTER: _user(
        PERSISTER,
        [
            subjects.DLQ_ALL,  # a poison message or an exhausted one, with its reason
            *_stream_info(*ASSAY_STREAMS, OBJECT_STREAM),  # looked up at start; the DLQ's size for /metrics
            *_pull(subjects.REQUESTS_STREAM, subjects.PERSISTER_REQUESTS_DURABLE),
            *_pull(subjects.EVENTS_STREAM, subjects.PERSISTER_EVENTS_DURABLE),
            # Max-deliveries advisories, and the message each one names, read back by its sequence.
            *_pull(subjects.ADVISORIES_STREAM, subjects.PERSISTER_ADVISORIES_DURABLE),
            f"{API}.STREAM.MSG.GET.{subjects.REQUESTS_STREAM}",
            f"{API}.STREAM.MSG.GET.{subjects.EVENTS_STREAM}",
            *_read_messages(OBJECT_STREAM),  # an object's metadata
            *_ordered_consumers(
                OBJECT_STREAM
            ),  # reading an object streams its chunks (a stream with no durable)
            f"{API}.STREAM.NAMES",  # … from a subscription that looks its stream up by subject
        ],
    ),
    SUBSCRIBER: _user(
        SUBSCRIBER,
        [
            *_stream_info(subjects.EVENTS_STREAM),  # the first and last sequence held
            *_read_messages(subjects.EVENTS_STREAM),  # replaying events by sequence
        ],
        (subjects.EVENTS_ALL,),  # following them as they are published
    ),
}


def generate_credentials() -> dict[str, str]:
    """A fresh random password for every user."""
    return {user: secrets.token_urlsafe(32) for user in USERS}


def authorization_config(credentials: Mapping[str, str]) -> str:
    """The nats-server `authorization` block for these users (JSON is valid NATS configuration)."""
    users = [
        {"user": user, "password": credentials[user], "permissions": msgspec.to_builtins(PERMISSIONS[user])}
        for user in USERS
    ]
    return f"authorization: {json.dumps({'users': users})}\n"


def creds_of(credentials: Mapping[str, str], user: str) -> str:
    """The ASSAY_NATS_CREDS value of one user."""
    return f"{user}:{credentials[user]}"


def credentials_file(var_dir: Path) -> Path:
    return var_dir / "nats-credentials.json"


def save_credentials(var_dir: Path, credentials: Mapping[str, str]) -> Path:
    """Write the users' passwords to `<var>/nats-credentials.json` (0600)."""
    path = credentials_file(var_dir)
    write_private(path, json.dumps(dict(credentials)))
    return path


def load_credentials(var_dir: Path) -> dict[str, str]:
    """The passwords the supervisor wrote (KeyError-free: a missing user is simply absent)."""
    return msgspec.json.decode(credentials_file(var_dir).read_bytes(), type=dict[str, str])
