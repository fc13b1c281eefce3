"""Names on NATS: streams, subjects, durable consumers and buckets. Everything that spells a subject imports it here."""

from __future__ import annotations

from shared.wire.messages import Priority

REQUESTS_STREAM = "ASSAY_REQUESTS"
EVENTS_STREAM = "ASSAY_EVENTS"
DLQ_STREAM = "ASSAY_DLQ"
# JetStream's own max-deliveries advisories about Assay's durables, kept so that none is missed while no
# persister listens (the server publishes them on core NATS, once)
ADVISORIES_STREAM = "ASSAY_ADVISORIES"
CONSUMED_STREAMS = (REQUESTS_STREAM, EVENTS_STREAM)  # those whose durables may exhaust a message

REQUESTS_ALL = "assay.requests.*"
EVENTS_ALL = "assay.events.>"
DLQ_ALL = "assay.dlq.>"
CANCEL_ALL = "assay.control.cancel.*"

ARTIFACTS_BUCKET = "assay-artifacts"  # object store: payloads larger than a message may be
# key-value: `accepted.<task_id>`, `batch.<batch_id>` (gateway), `cancel.<task_id>`
TASKS_BUCKET = "assay-tasks"

PERSISTER_EVENTS_DURABLE = "persister-events"
PERSISTER_REQUESTS_DURABLE = "persister-requests"
PERSISTER_ADVISORIES_DURABLE = "persister-advisories"


def request_subject(priority: Priority) -> str:
    return f"assay.requests.{priority}"


def orchestrator_durable(priority: Priority) -> str:
    """One durable pull consumer per priority, shared by every orchestrator replica."""
    return f"orchestrator-{priority}"


def event_subject(task_id: str, kind: str) -> str:
    return f"assay.events.{task_id}.{kind}"


def task_events(task_id: str) -> str:
    return f"assay.events.{task_id}.>"


def cancel_subject(task_id: str) -> str:
    return f"assay.control.cancel.{task_id}"


def dlq_subject(stream: str, consumer: str) -> str:
    return f"assay.dlq.{stream.lower()}.{consumer}"


def max_deliveries_advisories(stream: str) -> str:
    """Where JetStream announces that a message of `stream` reached its consumer's max_deliver (any consumer)."""
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.*"


def accepted_key(task_id: str) -> str:
    return f"accepted.{task_id}"


def cancel_key(task_id: str) -> str:
    return f"cancel.{task_id}"


def batch_key(batch_id: str) -> str:
    """The batch's record (its tasks) in the tasks bucket, put by the gateway before it queues them."""
    return f"batch.{batch_id}"
