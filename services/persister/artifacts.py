"""Service results too large for a message, read back from the JetStream object store and checked."""

from __future__ import annotations

import asyncio
import hashlib

import msgspec
from nats.js import JetStreamContext

from shared.operations.errors import StorageError
from shared.wire.messages import ArtifactRef
from shared.wire.protocol import ServiceResult


class ArtifactMismatch(StorageError):
    """The stored object differs from its reference (sha256); a retry may find the complete upload."""


class InvalidArtifact(StorageError):
    """The stored object is complete but no service result: no retry can fix it."""


async def load_result(js: JetStreamContext, ref: ArtifactRef) -> ServiceResult:
    """The ServiceResult stored under `ref`, after checking its sha256 (the integrity check that matters);
    InvalidArtifact when it holds none."""
    store = await js.object_store(ref.bucket)
    stored = await store.get(ref.name)
    data = stored.data or b""
    digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
    if digest != ref.sha256.lower():
        raise ArtifactMismatch(
            f"artifact {ref.bucket}/{ref.name}: expected {ref.size} bytes with sha256 {ref.sha256}, "
            f"got {len(data)} bytes with sha256 {digest}"
        )
    try:
        return await asyncio.to_thread(msgspec.json.decode, data, type=ServiceResult)
    except msgspec.ValidationError as error:
        raise InvalidArtifact(f"artifact {ref.bucket}/{ref.name} is not a service result: {error}") from error
    except msgspec.DecodeError as error:
        raise InvalidArtifact(f"artifact {ref.bucket}/{ref.name} is not JSON: {error}") from error
