"""Fixtures shared by the tests: a real nats-server on a free port with its own store, a real SQLite file."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.jetstream.natsd import EmbeddedNats

# Fixtures defined in support modules, registered here so that every test can ask for them by name.
from tests.support.analyzers import notes_app  # noqa: F401
from tests.support.apps import app_work_dir  # noqa: F401
from tests.support.corpus import corpus_analyzer, corpus_settings  # noqa: F401
from tests.support.fake_llm import fake_llm  # noqa: F401
from tests.support.ports import WORKER_RANGE
from tests.support.postgres import postgres_url  # noqa: F401
from tests.support.spans import record_spans

# The fault suite's options, fixtures and printed table; the tiers (fast, stack) and their xdist groups.
pytest_plugins = ["tests.support.faults.plugin", "tests.support.tiers"]

# The sample apps the tests run listen on free loopback ports their .env files do not name: allow any port on
# loopback for every process the tests start (the targets-policy tests set their own).
os.environ["ASSAY_TARGET_ALLOW"] = "127.0.0.1"
# The ports Assay opens for itself in the tests' processes come from this worker's range (tests/support/ports.py).
if WORKER_RANGE is not None:
    os.environ["ASSAY_PORT_RANGE"] = "{}-{}".format(*WORKER_RANGE)

REPO = Path(__file__).resolve().parent.parent
SAMPLE_APPS = REPO / "generated" / "apps"


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    """A real nats-server with JetStream, on a free loopback port, storing under the test's folder.

    Tests may `await nats_server.stop()` and `await nats_server.start()` to restart it on the same port and data.
    """
    server = EmbeddedNats(tmp_path / "nats", port_range=WORKER_RANGE)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans this test process finishes, kept in memory; each test sees only its own."""
    exporter = record_spans()
    exporter.clear()
    yield exporter
    exporter.clear()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'assay.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request: pytest.FixtureRequest) -> str:
    """A SQLite file, then a fresh PostgreSQL database (skipped, saying why, when no server answers)."""
    return str(request.getfixturevalue("database_url" if request.param == "sqlite" else "postgres_url"))
