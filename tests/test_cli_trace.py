"""`assay trace`: span files written by shared/telemetry/tracing's real exporter, for two services, rendered as a tree."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from services.cli.trace_tree import render_traces
from shared.telemetry.span_files import span_files, spans_of_traces, trace_ids_of_task
from shared.telemetry.tracing import (
    TASK_ID_ATTRIBUTE,
    JsonLinesSpanExporter,
    context_from_traceparent,
    inject_headers,
)

REPO = Path(__file__).resolve().parent.parent
TASK = "task_0123456789ab"


def provider_for(service: str, trace_dir: Path) -> TracerProvider:
    """A provider like setup_tracing's, but not global, so two "services" can live in one test process."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(trace_dir / f"{service}-1.jsonl")))
    return provider


def write_task_trace(trace_dir: Path) -> str:
    """gateway: SERVER → PRODUCER; orchestrator (continuing the NATS headers): CONSUMER → two overlapping CLIENT
    spans; plus one span whose parent was never exported, and the trace of another task."""
    gateway = provider_for("gateway", trace_dir).get_tracer("test")
    orchestrator = provider_for("orchestrator", trace_dir).get_tracer("test")
    tagged = {TASK_ID_ATTRIBUTE: TASK}
    with (
        gateway.start_as_current_span(
            "POST /api/analysis/run", kind=SpanKind.SERVER, attributes=tagged
        ) as root,
        gateway.start_as_current_span("publish assay.requests.normal", kind=SpanKind.PRODUCER),
    ):
        headers = inject_headers()
    parent = context_from_traceparent(headers["traceparent"])
    with orchestrator.start_as_current_span(
        "process assay.requests.normal", context=parent, kind=SpanKind.CONSUMER
    ):
        # Overlapping runs: static starts first but ends last, so the file holds dynamic first.
        static = orchestrator.start_span("analyze static", kind=SpanKind.CLIENT)
        time.sleep(0.002)
        orchestrator.start_span("analyze dynamic", kind=SpanKind.CLIENT).end()
        static.end()
    trace_id = format(root.get_span_context().trace_id, "032x")
    lost_parent = context_from_traceparent(f"00-{trace_id}-{'12' * 8}-01")
    orchestrator.start_span(
        "publish assay.events.x.completed", context=lost_parent, kind=SpanKind.PRODUCER
    ).end()
    # Another task's trace in the same files must not show up.
    with gateway.start_as_current_span(
        "POST /api/analysis/run", attributes={TASK_ID_ATTRIBUTE: "task_ffffffffffff"}
    ):
        pass
    return trace_id


def outline(line: str) -> tuple[int, str, bool]:
    """(depth, span name, flagged orphan) of one rendered line."""
    depth = (len(line) - len(line.lstrip(" "))) // 2
    return depth, line.strip().split("  [")[0], line.endswith("(orphan)")


def test_spans_of_two_services_render_as_one_tree_with_the_orphan_on_top(tmp_path: Path) -> None:
    trace_id = write_task_trace(tmp_path)
    files = span_files(tmp_path)

    assert trace_ids_of_task(files, TASK) == [trace_id]
    text = render_traces(spans_of_traces(files, [trace_id]))

    lines = text.splitlines()
    assert lines[0] == f"trace {trace_id}: 6 spans across gateway, orchestrator"
    assert [outline(line) for line in lines[1:]] == [
        (0, "POST /api/analysis/run", False),
        (1, "publish assay.requests.normal", False),
        (2, "process assay.requests.normal", False),
        (3, "analyze static", False),  # children by start time, not by the order the file holds them
        (3, "analyze dynamic", False),
        (0, "publish assay.events.x.completed", True),
    ]
    assert "  [gateway]  SERVER  " in lines[1]
    assert "  [orchestrator]  CONSUMER  " in lines[3] and lines[3].endswith(" ms")
    assert float(lines[4].split("CLIENT  ")[1].removesuffix(" ms")) >= 2.0  # static lasted the 2 ms sleep


def run_cli(*args: str, trace_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASSAY_TRACE_DIR": str(trace_dir), "ASSAY_GATEWAY_URL": "http://127.0.0.1:9"}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_assay_trace_prints_the_tree(tmp_path: Path) -> None:
    trace_id = write_task_trace(tmp_path)

    result = run_cli("trace", TASK, "--dir", str(tmp_path), trace_dir=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"trace {trace_id}: 6 spans")
    assert "\n      analyze static  [orchestrator]  CLIENT  " in result.stdout


def test_assay_trace_without_spans_exits_1_saying_where_it_looked(tmp_path: Path) -> None:
    write_task_trace(tmp_path)

    result = run_cli("trace", "task_aaaaaaaaaaaa", "--dir", str(tmp_path), trace_dir=tmp_path)

    assert result.returncode == 1
    assert f"no spans for task task_aaaaaaaaaaaa under {tmp_path}" in result.stderr


def test_assay_trace_without_a_gateway_exits_2(tmp_path: Path) -> None:
    result = run_cli("trace", TASK, trace_dir=tmp_path)

    assert result.returncode == 2
    assert "gateway not reachable" in result.stderr
