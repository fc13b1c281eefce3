"""The API docs page and the headers of every answer, over HTTP against a real gateway (uvicorn on loopback, a real
nats-server, a real SQLite file), and the page in a real browser (Debian's Chromium driven by Playwright).

`X-Content-Type-Options: nosniff` on every answer (JSON, errors, a 404 of no route, files, pages); the docs page is
public and holds nothing, carries a Content-Security-Policy, loads only the gateway's own files, and in the browser
asks for a token, renders the OpenAPI 3.1 document with it and sends it on the calls it makes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shared.jetstream.natsd import EmbeddedNats
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, LAPTOP, browser_missing
from tests.support.gateway import Gateway, gateway_for, gateway_settings, migrate_database


@pytest.fixture
async def gateway(tmp_path: Path, nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Gateway]:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url))
    async with gateway_for(settings) as running:
        yield running


async def test_every_answer_says_nosniff(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as anonymous:
        answers = {
            "JSON": await gateway.http.get("/api/tasks"),
            "422": await gateway.http.get("/api/tasks", params={"limit": "-1"}),
            "401": await anonymous.get("/api/tasks"),
            "404 of no route": await anonymous.get("/no/such/route"),
            "404 of a task": await gateway.http.get("/api/tasks/task_000000000000"),
            "health": await anonymous.get("/healthz"),
            "metrics": await gateway.http.get("/metrics"),
            "OpenAPI document": await gateway.http.get("/schema/openapi.json"),
            "docs page": await anonymous.get("/schema"),
            "Swagger UI file": await anonymous.get("/schema/assets/swagger-ui.css"),
            "page file": await anonymous.get("/assets/session.js"),
        }
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {
        "JSON": 200,
        "422": 422,
        "401": 401,
        "404 of no route": 404,
        "404 of a task": 404,
        "health": 200,
        "metrics": 200,
        "OpenAPI document": 200,
        "docs page": 200,
        "Swagger UI file": 200,
        "page file": 200,
    }
    assert {
        name: answer.headers.get("x-content-type-options") for name, answer in answers.items()
    } == dict.fromkeys(answers, "nosniff")
    assert answers["JSON"].headers["content-type"] == "application/json"


async def test_the_docs_page_is_public_holds_nothing_and_keeps_its_document_behind_a_token(
    gateway: Gateway,
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as anonymous:
        pages = [await anonymous.get(path) for path in ("/schema", "/schema/swagger")]
        document = await anonymous.get("/schema/openapi.json")
        references = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", pages[0].text)
        files = {ref: await anonymous.get(ref) for ref in references}
        package_source = await anonymous.get("/schema/page/__init__.py")

    for page in pages:
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert (
        "<script>" not in pages[0].text and "openapi" not in pages[0].text.lower()
    )  # no inline script, no document
    assert document.status_code == 401
    assert len(files) >= 5 and all(
        ref.startswith("/") and not ref.startswith("//") for ref in files
    )  # no CDN
    assert {ref: answer.status_code for ref, answer in files.items()} == dict.fromkeys(files, 200)
    assert package_source.status_code == 404
    with_token = await gateway.http.get("/schema/openapi.json")
    assert with_token.status_code == 200 and with_token.json()["openapi"].startswith("3.1")


@pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
async def test_a_browser_renders_the_document_with_the_token_and_tries_a_route_with_it(
    gateway: Gateway,
) -> None:
    from playwright.async_api import async_playwright, expect

    assert gateway.token is not None
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport=LAPTOP)
            console: list[str] = []
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            await page.goto(f"{gateway.url}/schema")
            await page.get_by_label("Bearer token").fill(gateway.token)
            await page.get_by_label("Bearer token").press("Enter")

            await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Assay", timeout=30_000)
            run = page.locator(".opblock-summary-path", has_text=re.compile(r"^/api/analysis/run$"))
            await expect(run).to_be_visible()
            assert await page.get_by_text("Unable to render this definition").count() == 0

            models = page.locator(
                "#operations-apps-ApiModelsListModels"
            )  # GET /api/models: tried with the token
            await models.locator(".opblock-summary").click()
            await models.get_by_role("button", name="Try it out").click()
            await models.get_by_role("button", name="Execute").click()
            await expect(
                models.locator(".live-responses-table tbody .response-col_status").first
            ).to_have_text("200", timeout=15_000)
        finally:
            await browser.close()
    assert requested and all(url.startswith(gateway.url) for url in requested), requested
    refused = [line for line in console if "Content Security Policy" in line or "Refused" in line]
    assert refused == []
