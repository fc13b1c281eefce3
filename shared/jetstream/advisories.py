"""JetStream's max-deliveries advisory: the server's word that a message reached its consumer's `max_deliver`
without being settled, whatever the reason (a consumer that crashed or hung on it each time included). The
server publishes it on `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>` when it would deliver the
message once more; the message itself stays in its stream under `stream_seq`."""

from __future__ import annotations

import msgspec

from shared.wire.tasks import TaskRef

MAX_DELIVER_TYPE = "io.nats.jetstream.advisory.v1.max_deliver"


class MaxDeliveries(msgspec.Struct, frozen=True, kw_only=True):
    """One max-deliveries advisory, as the server sends it (fields Assay does not read are ignored)."""

    type: str
    id: str  # unique per advisory: the dead letter's id, so that a replayed advisory is stored once
    stream: str
    consumer: str
    stream_seq: int
    deliveries: int

    @property
    def event_id(self) -> str:
        return self.id

    @property
    def task(self) -> TaskRef | None:
        """Unknown until the message it names is read back."""
        return None


_decoder = msgspec.json.Decoder(MaxDeliveries)


def decode_max_deliveries(data: bytes) -> MaxDeliveries:
    """Decode an advisory; raises msgspec.ValidationError when it is not a max-deliveries one."""
    advisory = _decoder.decode(data)
    if advisory.type != MAX_DELIVER_TYPE:
        raise msgspec.ValidationError(f"not a max-deliveries advisory: {advisory.type}")
    return advisory
