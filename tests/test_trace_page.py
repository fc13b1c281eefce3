"""The trace page: its shell, script and style are public and hold no task data, the trace they read needs a
token, and (with Playwright and Chromium) a browser shows a real task's waterfall with a lane per service and a
tool span that opens its findings.

HTTP tests: a real gateway (uvicorn on loopback), a real nats-server, a real SQLite file. Browser test: the real
stack, as tests/test_trace_hygiene.py runs it, and Debian's Chromium driven by Playwright (skipped, with the
reason, when either is missing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from shared.jetstream.natsd import EmbeddedNats
from shared.telemetry.tracing import JsonLinesSpanExporter, context_from_traceparent
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, browser_missing
from tests.support.gateway import Gateway, gateway_for, gateway_settings, migrate_database
from tests.support.stack import Stack

REPO = Path(__file__).resolve().parent.parent
SERVICES = ["gateway", "orchestrator", "analyzer-static", "persister"]


@pytest.fixture
async def gateway(tmp_path: Path, nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Gateway]:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url))
    async with gateway_for(settings) as running:
        yield running


async def test_the_page_and_its_files_are_public_and_hold_no_task_data(gateway: Gateway) -> None:
    submitted = await gateway.submit()
    assert submitted.status_code == 202, submitted.text
    task_id = submitted.json()["task_id"]

    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as anonymous:
        page = await anonymous.get(f"/traces/{task_id}")
        script = await anonymous.get("/traces/assets/trace.js")
        session = await anonymous.get("/assets/session.js")
        style = await anonymous.get("/traces/assets/trace.css")
        package_source = await anonymous.get("/traces/assets/__init__.py")
        trace = await anonymous.get(f"/api/tasks/{task_id}/trace")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert package_source.status_code == 404  # only the page's own files, not the package around them
    assert session.status_code == 200 and session.headers["content-type"].startswith("text/javascript")
    for served in (page, script, style, session):
        assert task_id not in served.text
    # Everything the page refers to is served here: no CDN.
    assert 'src="/traces/assets/trace.js"' in page.text and 'href="/traces/assets/trace.css"' in page.text
    assert 'src="/assets/session.js"' in page.text  # the token and API calls every page shares
    assert "http" not in page.text.replace("http-equiv", "")
    # The data the page shows needs the token, which the script sends itself.
    assert trace.status_code == 401
    assert "Authorization" in session.text and "/api/tasks/" in script.text
    with_token = await gateway.http.get(f"/api/tasks/{task_id}/trace")
    assert with_token.status_code == 200 and with_token.json()["task_id"] == task_id


def add_failed_span(trace_dir: Path, trace_id: str, parent_span_id: str) -> None:
    """One failed span in the task's trace, written to the span files by the exporter every service uses (as a
    service whose step failed would)."""
    provider = TracerProvider(resource=Resource.create({"service.name": "checker"}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(trace_dir / "checker-0.jsonl")))
    parent = context_from_traceparent(f"00-{trace_id}-{parent_span_id}-01")
    with provider.get_tracer("tests").start_as_current_span("check results", context=parent) as span:
        span.set_status(Status(StatusCode.ERROR, "deliberately failed"))
    provider.shutdown()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("trace-page"), apps_dir=REPO / "generated" / "apps")
    stack.start()
    yield stack
    stack.stop()


@pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
def test_a_browser_shows_the_waterfall_by_service_and_a_tool_spans_findings(
    stack: Stack, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    task_id = stack.submit(
        model_slug="openai_codex-mini", app_number=1, analysis_type="static", tools=["bandit", "radon"]
    )
    assert stack.wait_terminal(task_id)["status"] == "completed", stack.log_tail()
    bandit_findings = httpx.get(
        f"{stack.gateway_url}/api/tasks/{task_id}/findings",
        params={"tool": "bandit"},
        headers=stack.headers,
        timeout=10,
    ).json()["total"]
    stack.stop()  # flushes every service's last spans into the files
    stack.start()
    trace = httpx.get(
        f"{stack.gateway_url}/api/tasks/{task_id}/trace", headers=stack.headers, timeout=10
    ).json()
    [root] = [span for span in trace["spans"] if span["parent_span_id"] is None]
    add_failed_span(stack.trace_dir, trace["trace_id"], root["span_id"])

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.goto(f"{stack.gateway_url}/traces/{task_id}")
            page.get_by_label("Bearer token").fill(stack.token)
            page.get_by_label("Bearer token").press("Enter")  # the form works from the keyboard
            page.wait_for_selector("section.lane[data-service='persister']", timeout=30_000)
            lanes = page.eval_on_selector_all("section.lane", "nodes => nodes.map(n => n.dataset.service)")
            assert set(SERVICES) <= set(lanes)
            bars = page.locator("section.lane[data-service='analyzer-static'] .bar").count()
            assert bars > 0
            # The failed span is marked by colour (class) and by text, and nested under the root.
            failed = page.locator("section.lane[data-service='checker'] li.span.error")
            assert failed.count() == 1 and failed.inner_text().startswith("[error]check results")
            assert page.locator("li.span.error").count() == 1
            assert "1 with errors" in page.locator("#status").inner_text()
            assert failed.locator(".label").evaluate("node => node.style.paddingLeft") == "1.2rem"  # depth 1

            findings = page.get_by_role("button", name=f"Findings of bandit ({bandit_findings})")
            findings.focus()
            page.keyboard.press("Enter")
            page.wait_for_selector("text=finding(s) of bandit from", timeout=15_000)
            shown = page.locator(".findings ul li").count()
            assert shown == min(bandit_findings, 100)
            assert page.locator(".findings code").first.inner_text() == (
                f"GET /api/tasks/{task_id}/findings?tool=bandit"
            )
            assert (
                stack.token not in page.content()
            )  # the field is cleared; the token lives in sessionStorage
            page.screenshot(path=str(tmp_path / "trace-page.png"), full_page=True)
        finally:
            browser.close()
