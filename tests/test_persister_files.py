"""The persister's plain modules on a real file system: atomic result folders, staging, the documents, and the
small rules the consumer follows (backoff, traceparent parsing)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from services.persister import folders, staging
from services.persister.document import Ending, primary_name, render
from services.persister.lookups import TaskSnapshot
from services.persister.staging import StagedService
from shared.jetstream.delivery import backoff_s
from shared.telemetry.tracing import trace_id_of
from shared.wire.protocol import ServiceResult
from shared.wire.tasks import TaskRef
from tests.support.persister import files_under, service_result, sha256_of

CREATED = datetime(2026, 11, 29, 10, 15, 0, tzinfo=UTC)


def record(**changes: object) -> TaskSnapshot:
    values: dict[str, object] = {
        "task": TaskRef(
            id="task_982d72cfa0f4", model_slug="openai_codex-mini", app_number=3, analysis_type="security"
        ),
        "priority": "normal",
        "tools": [],
        "services": ["static"],
        "status": "running",
        "status_reason": None,
        "created_at": CREATED,
        "started_at": CREATED + timedelta(seconds=2),
        "worker": "host:1",
        "trace_id": "ab" * 16,
        "result_dir": None,
    }
    values.update(changes)
    return TaskSnapshot(**values)  # type: ignore[arg-type]


async def test_folder_appears_complete_and_an_existing_one_is_kept(tmp_path: Path) -> None:
    final = tmp_path / "model" / "app1" / "task_security_982d72cfa0f4_20261129T101500Z"
    leftover = final.with_name(f".tmp-{final.name}") / "deadbeef"  # what a crash before the rename leaves
    leftover.mkdir(parents=True)
    (leftover / "half.json").write_text("{")

    assert await folders.write_folder(final, {"a.json": b"{}", "services/static.json": b"[1]"}) is True
    assert files_under(final) == {"a.json", "services/static.json"}
    assert (final / "services" / "static.json").read_bytes() == b"[1]"
    assert sorted(path.name for path in final.parent.iterdir()) == [
        final.name
    ]  # leftover and temp folder gone

    assert await folders.write_folder(final, {"other.json": b"{}"}) is False  # a retry keeps what it finds
    assert files_under(final) == {"a.json", "services/static.json"}


async def test_folder_refuses_a_file_name_that_leaves_it_and_leaves_nothing_behind(tmp_path: Path) -> None:
    final = tmp_path / "app1" / "task_x"
    with pytest.raises(ValueError, match="leave the result folder"):
        await folders.write_folder(final, {"ok.json": b"{}", "../escape.json": b"{}"})
    assert not final.exists() and list(final.parent.iterdir()) == []
    assert not (tmp_path / "app1" / "escape.json").exists()


def test_staging_round_trips_a_service_and_refuses_unsafe_names() -> None:
    result = service_result(count=3)
    done = StagedService(service="static", status="success", event_id="e1", result=result)
    failed = StagedService(
        service="dynamic", status="failed", error="no healthy dynamic analyzer", event_id="e2"
    )
    assert staging.decode(staging.encode(done)) == done
    assert staging.decode(staging.encode(failed)).result is None
    assert staging.check_service_name("static") == "static"
    with pytest.raises(ValueError, match="not allowed"):
        staging.check_service_name("../x")
    with pytest.raises(msgspec.DecodeError):
        staging.decode(b'{"service": "static"')


def test_render_builds_every_document_and_a_manifest_that_matches(tmp_path: Path) -> None:
    services = [
        StagedService(service="static", status="success", event_id="e1", result=service_result(count=10)),
        StagedService(service="ai", status="failed", error="model timed out", event_id="e2"),
        StagedService(
            service="performance",
            status="success",
            event_id="e3",
            result=ServiceResult(service="performance", status="success"),
        ),
    ]
    ending = Ending(
        status="partial", reason="ai: model timed out", finished_at=CREATED + timedelta(seconds=12)
    )
    rendered = render(record(), ending, services)
    primary = "openai_codex-mini_app3_task_982d72cfa0f4.json"
    assert primary_name(record()) == primary
    assert set(rendered.files) == {
        primary,
        "manifest.json",
        "consolidated.sarif.json",
        "services/static.json",
        "services/ai.json",
        "services/performance.json",
    }
    assert rendered.findings_count == 10
    assert rendered.severity_breakdown == {"critical": 2, "high": 2, "medium": 2, "low": 2, "info": 2}

    document = json.loads(rendered.files[primary])
    assert document["timestamp"].startswith("2026-11-29T10:15:00")
    assert document["metadata"]["duration_s"] == 10.0  # from started_at to finished_at
    assert document["metadata"]["status_reason"] == "ai: model timed out"
    assert document["results"]["success"] is True  # partial: some results stand
    assert document["summary"]["services_executed"] == 3
    assert json.loads(rendered.files["services/ai.json"])["error"] == "model timed out"

    for name, data in rendered.files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    manifest = json.loads(rendered.files["manifest.json"])
    assert manifest["trace_id"] == "ab" * 16 and manifest["primary_result"] == primary
    assert {entry["path"] for entry in manifest["files"]} == set(rendered.files) - {"manifest.json"}
    assert all(entry["sha256"] == sha256_of(tmp_path / entry["path"]) for entry in manifest["files"])


def test_failed_and_cancelled_documents_say_success_false() -> None:
    for status in ("failed", "cancelled"):
        rendered = render(record(), Ending(status=status, reason="stopped", finished_at=CREATED), [])
        document = json.loads(rendered.files[primary_name(record())])
        assert document["results"]["success"] is False
        assert document["summary"]["status"] == status
        assert document["summary"]["severity_breakdown"] == {
            level: 0 for level in ("critical", "high", "medium", "low", "info")
        }


def test_backoff_doubles_from_one_second_up_to_thirty() -> None:
    assert [backoff_s(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_trace_id_is_read_only_from_a_valid_traceparent() -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_of({"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}) == trace_id
    assert trace_id_of({"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"}) is None
    assert trace_id_of({"traceparent": "garbage"}) is None
    assert trace_id_of(None) is None
