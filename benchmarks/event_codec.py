"""Event codec: encoding and decoding one `service` event with N findings.

Assay sends every event as a msgspec Struct and decodes it once at the consumer's edge into typed, validated
objects (`shared.wire.messages.encode` / `decode_event`). The baseline is what a dict-based service does with the same
event: `json.dumps` of the equivalent dict on the way out, `json.loads` plus a check that the envelope and every
finding carry their required keys on the way in. The baseline's check is the lighter one: msgspec also checks
types, the task id pattern and the severity literal. Figures are medians of timed batches; MB/s is the
round trip (encode + decode) over each path's own bytes on the wire, whose sizes are shown too.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from benchmarks.common import Row, median_ns, service_event
from shared.wire.messages import decode_event, encode

SIZES = (100, 1_000, 10_000)
REPEATS = 11
BUDGET_S = 2.0  # per measurement, after at least three batches
ENVELOPE_KEYS = ("kind", "schema_version", "event_id", "task", "occurred_at", "service", "status")
FINDING_KEYS = ("tool", "rule_id", "severity", "message", "category", "fingerprint")


def dict_decode(data: bytes) -> dict[str, Any]:
    """The baseline consumer: parse, then refuse an event or finding that lacks a required key."""
    event: dict[str, Any] = json.loads(data)
    missing = [key for key in ENVELOPE_KEYS if key not in event]
    result = event.get("result")
    if missing or not isinstance(result, dict) or not isinstance(result.get("findings"), list):
        raise ValueError(f"malformed event: missing {missing or ['result.findings']}")
    for finding in result["findings"]:
        if not isinstance(finding, dict) or any(key not in finding for key in FINDING_KEYS):
            raise ValueError(f"malformed finding: {finding!r:.80}")
    return event


def _measure(count: int) -> list[Row]:
    event = service_event(count)
    as_dict = msgspec.to_builtins(event)
    typed_bytes = encode(event)
    dict_bytes = json.dumps(as_dict).encode()
    if decode_event(typed_bytes) != event or dict_decode(dict_bytes) != as_dict:
        raise RuntimeError("a codec did not round-trip the event")  # measure only codecs that work
    loops = max(1, 2_000 // count)

    def timed(work: Any) -> float:
        return median_ns(work, loops, REPEATS, BUDGET_S) / 1_000  # µs

    base_enc = timed(lambda: json.dumps(as_dict).encode())
    base_dec = timed(lambda: dict_decode(dict_bytes))
    typed_enc = timed(lambda: encode(event))
    typed_dec = timed(lambda: decode_event(typed_bytes))

    def mb_per_s(size: int, micros: float) -> float:
        return size / micros  # bytes per µs = MB/s

    case = f"N={count:,}"
    return [
        Row(f"{case} size on the wire", "kB", len(dict_bytes) / 1_000, len(typed_bytes) / 1_000),
        Row(f"{case} encode", "µs/msg", base_enc, typed_enc),
        Row(f"{case} decode + validate", "µs/msg", base_dec, typed_dec),
        Row(f"{case} round trip", "µs/msg", base_enc + base_dec, typed_enc + typed_dec),
        Row(
            f"{case} round trip",
            "MB/s",
            mb_per_s(len(dict_bytes), base_enc + base_dec),
            mb_per_s(len(typed_bytes), typed_enc + typed_dec),
            higher_is_better=True,
        ),
    ]


def run() -> list[Row]:
    return [row for count in SIZES for row in _measure(count)]
