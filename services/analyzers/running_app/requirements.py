"""The app's `requirements.json`: the endpoints it promises, decoded and validated once at the edge."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from shared.operations.errors import InputError

log = logging.getLogger(__name__)

REQUIREMENTS_FILE = "requirements.json"

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    method: Method
    path: Annotated[str, msgspec.Meta(pattern=r"^/")]  # relative to the backend: never another host
    expected_status: Annotated[int, msgspec.Meta(ge=100, le=599)]
    body: Any = None


class Requirements(msgspec.Struct, frozen=True, kw_only=True):
    title: str = ""
    description: str = ""
    functional_requirements: list[str] = []
    endpoints: list[Endpoint] = []

    def get_paths(self) -> list[str]:
        """Paths of the GET endpoints, each once, in file order: safe to call any number of times."""
        return list(dict.fromkeys(endpoint.path for endpoint in self.endpoints if endpoint.method == "GET"))


class RequirementsError(InputError):
    """requirements.json exists but is not valid; the message names the problem."""


_decoder = msgspec.json.Decoder(Requirements)


async def load_requirements(app_dir: Path | None) -> Requirements | None:
    """The app's requirements, None when the app (or its requirements.json) is not here."""
    if app_dir is None:
        return None
    path = app_dir / REQUIREMENTS_FILE
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        return None
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise RequirementsError(f"{REQUIREMENTS_FILE} is invalid: {error}") from error


async def promised_get_paths(app_dir: Path | None, task_id: str) -> list[str]:
    """The GET endpoint paths requirements.json promises; [] when it is missing or invalid.

    Tools that only borrow these paths carry on without them; the `endpoints` tool is the one that fails on
    an invalid file, so the problem is reported once, with its reason.
    """
    try:
        requirements = await load_requirements(app_dir)
    except RequirementsError as error:
        log.warning("%s; using the target roots only", error, extra={"task_id": task_id})
        return []
    return requirements.get_paths() if requirements is not None else []
