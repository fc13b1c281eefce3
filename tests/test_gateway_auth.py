"""Who gets in: bearer tokens on every route but the health checks, scopes, revocation, the token commands of
the CLI, the local token `assay up` saves, and a gateway that will not start exposed.

A real gateway (uvicorn on loopback), a real nats-server, a real SQLite file; the CLI runs as a subprocess.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest
from litestar.enums import HttpMethod
from litestar.routes import HTTPRoute

from services.cli.api_token import ensure_local_token, token_file
from services.gateway.app import create_app
from shared.jetstream.natsd import EmbeddedNats
from shared.operations.config import load_settings
from shared.store.database import create_engine, sessions
from shared.store.tokens import authenticate, revoke_token
from tests.support.gateway import (
    REPO,
    Gateway,
    bearer,
    gateway_for,
    gateway_settings,
    issue_token,
    migrate_database,
    run_cli,
)
from tests.support.ports import free_port

SAMPLE_VALUES = {"task_id": "task_0123456789ab", "token_id": "0123456789ab", "letter_id": "1"}


@pytest.fixture
async def gateway(tmp_path: Path, nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Gateway]:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url))
    async with gateway_for(settings) as running:
        yield running


def protected_routes(gateway: Gateway) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, the OpenAPI document's own included, but the health ones."""
    app = create_app(gateway.settings)
    found: list[tuple[str, str]] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            # Deliberately public, so left out: the health checks, the API docs' files, and the trace page's
            # shell, script and style (a browser sends no token for them; they hold no data, and the script
            # reads the trace with the token it asks for: tests/test_trace_page.py).
            if handler.opt.get("public"):
                continue
            path = re.sub(r"\{(\w+):\w+\}", lambda m: SAMPLE_VALUES.get(m.group(1), "x"), route.path)
            found += [
                (HttpMethod(method).value, path)
                for method in sorted(handler.http_methods)
                if method != "OPTIONS"
            ]
    return found


async def test_every_route_but_health_answers_401_without_a_token(gateway: Gateway) -> None:
    routes = protected_routes(gateway)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as anonymous:
        answers = {(method, path): await anonymous.request(method, path) for method, path in routes}
        health = [await anonymous.get("/healthz"), await anonymous.get("/readyz")]

    assert {("POST", "/api/analysis/run"), ("GET", "/schema/openapi.json"), ("GET", "/api/tokens")} <= set(
        routes
    )
    assert {route: answer.status_code for route, answer in answers.items()} == {
        route: 401 for route in routes
    }
    assert all(answer.headers["www-authenticate"].startswith("Bearer") for answer in answers.values())
    assert [answer.status_code for answer in health] == [200, 200]


async def test_a_malformed_or_unknown_token_is_401(gateway: Gateway) -> None:
    unknown = "assay_0123456789ab_" + "A" * 43
    for token in ("nonsense", unknown, (gateway.token or "")[:-1] + "x"):
        answer = await gateway.http.get("/api/tasks", headers=bearer(token))
        assert answer.status_code == 401, token


async def test_a_revoked_token_is_401(gateway: Gateway) -> None:
    token = await issue_token(gateway.settings.database_url, "soon-gone", "read")
    token_id = token.split("_")[1]
    assert (await gateway.http.get("/api/tasks", headers=bearer(token))).status_code == 200

    revoked = await gateway.http.post(f"/api/tokens/{token_id}/revoke")

    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert (await gateway.http.get("/api/tasks", headers=bearer(token))).status_code == 401


async def test_a_token_revoked_elsewhere_is_trusted_only_for_the_cache_time(
    tmp_path: Path, nats_server: EmbeddedNats, database_url: str
) -> None:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url))
    # A cache time longer than any test: whether the second request is served can only depend on the cache.
    cached = msgspec.structs.replace(settings, token_cache_s=3600)
    unchecked = msgspec.structs.replace(settings, token_cache_s=0)
    for gateway_settings_, after_revoke in ((cached, 200), (unchecked, 401)):
        async with gateway_for(gateway_settings_) as gateway:
            token = await issue_token(database_url, f"revoked-directly-{after_revoke}", "read")
            assert (await gateway.http.get("/api/tasks", headers=bearer(token))).status_code == 200
            engine = create_engine(database_url)
            try:  # as `assay token revoke --direct` does: the gateway is not told
                assert await revoke_token(sessions(engine), token.split("_")[1]) is not None
            finally:
                await engine.dispose()
            answer = await gateway.http.get("/api/tasks", headers=bearer(token))
            assert answer.status_code == after_revoke, gateway_settings_.token_cache_s


async def test_scopes_read_cannot_submit_and_submit_cannot_manage_tokens(gateway: Gateway) -> None:
    read = bearer(await issue_token(gateway.settings.database_url, "reader", "read"))
    submit = bearer(await issue_token(gateway.settings.database_url, "submitter", "submit"))
    body = {"model_slug": "openai_codex-mini", "app_number": 1, "analysis_type": "static"}

    refused = await gateway.http.post("/api/analysis/run", json=body, headers=read)
    looked = await gateway.http.get("/api/tasks", headers=read)
    accepted = await gateway.http.post("/api/analysis/run", json=body, headers=submit)
    cancel_by_reader = await gateway.http.post(
        f"/api/tasks/{accepted.json()['task_id']}/cancel", headers=read
    )
    tokens_by_submitter = await gateway.http.get("/api/tokens", headers=submit)

    assert refused.status_code == 403 and "scope read" in refused.json()["detail"]
    assert looked.status_code == 200
    assert accepted.status_code == 202
    assert cancel_by_reader.status_code == 403
    assert tokens_by_submitter.status_code == 403
    assert await gateway.requests_in_stream() == 1


async def test_a_text_plain_body_is_415_and_nothing_is_queued(gateway: Gateway) -> None:
    body = b'{"model_slug": "openai_codex-mini", "app_number": 1, "analysis_type": "static"}'

    plain = await gateway.http.post("/api/analysis/run", content=body, headers={"content-type": "text/plain"})
    untyped = await gateway.http.post("/api/analysis/run", content=body, headers={"content-type": ""})

    assert plain.status_code == 415 and "application/json" in plain.json()["detail"]
    assert untyped.status_code == 415
    assert await gateway.requests_in_stream() == 0


async def test_token_create_list_revoke_through_the_cli(gateway: Gateway) -> None:
    code, out, err = await run_cli(gateway, "token", "create", "ci-bot", "--scope", "submit")
    assert code == 0, err
    token = out.strip().splitlines()[-1]
    assert re.fullmatch(r"assay_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
    token_id = token.split("_")[1]
    assert (await gateway.submit(tools=["ruff"])).status_code == 202
    assert (await gateway.http.get("/api/tasks", headers=bearer(token))).status_code == 200

    code, listed, err = await run_cli(gateway, "token", "list")
    assert code == 0, err
    row = next(line for line in listed.splitlines() if line.startswith(token_id))
    assert "ci-bot" in row and "submit" in row and token not in listed

    code, out, err = await run_cli(gateway, "token", "revoke", token_id)
    assert code == 0 and f"revoked token {token_id}" in out, err
    assert (await gateway.http.get("/api/tasks", headers=bearer(token))).status_code == 401

    code, _out, err = await run_cli(gateway, "token", "list", token=token)
    assert code == 2 and "invalid or revoked token" in err


async def test_token_create_direct_writes_the_database_without_a_gateway(gateway: Gateway) -> None:
    code, out, err = await run_cli(gateway, "token", "create", "first-admin", "--scope", "admin", "--direct")

    assert code == 0, err
    token = out.strip().splitlines()[-1]
    assert (await gateway.http.get("/api/tokens", headers=bearer(token))).status_code == 200


async def test_the_local_token_of_assay_up_is_saved_0600_and_kept_while_it_works(
    tmp_path: Path, database_url: str
) -> None:
    await migrate_database(database_url)
    settings = load_settings(
        {
            "ASSAY_DATABASE_URL": database_url,
            "ASSAY_GATEWAY_URL": "http://127.0.0.1:8123",
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
        }
    )

    first = await ensure_local_token(settings)
    second = await ensure_local_token(settings)

    assert first == second == token_file(settings)
    assert first.parent.parent == tmp_path / "config" / "assay"
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.parent.stat().st_mode) == 0o700
    token = first.read_text().strip()
    engine = create_engine(database_url)
    known = await authenticate(sessions(engine), token)
    await engine.dispose()
    assert known is not None and known.scope == "admin" and known.name.startswith("local-")

    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "ASSAY_GATEWAY_URL": settings.gateway_url,
    }
    env.pop("ASSAY_TOKEN", None)
    shown = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "token",
        "show-local",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await shown.communicate()
    assert shown.returncode == 0 and out.decode().strip() == token


async def start_gateway(env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.gateway",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("the gateway started (it should have refused)") from None
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_the_gateway_refuses_a_non_loopback_address_without_tokens_and_auth_off_there(
    tmp_path: Path, nats_server: EmbeddedNats, database_url: str
) -> None:
    await migrate_database(database_url)
    env = {
        **os.environ,
        "ASSAY_NATS_URL": nats_server.url,
        "ASSAY_DATABASE_URL": database_url,
        "ASSAY_GATEWAY_URL": f"http://0.0.0.0:{free_port()}",
        "ASSAY_VAR_DIR": str(tmp_path / "var"),
        "ASSAY_TRACE_DIR": str(tmp_path / "traces"),
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)

    no_tokens = await start_gateway(env)
    open_wide = await start_gateway({**env, "ASSAY_AUTH": "off"})

    assert no_tokens[0] != 0 and "no API token exists" in no_tokens[1]
    assert open_wide[0] != 0 and "ASSAY_AUTH=off is refused on 0.0.0.0" in open_wide[1]


async def test_auth_off_on_loopback_serves_without_a_token_and_says_so(
    tmp_path: Path, nats_server: EmbeddedNats, database_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url), auth=False)
    async with gateway_for(settings) as running:
        answer = await running.http.get("/api/tasks")

    assert running.token is None and answer.status_code == 200
    assert "ASSAY_AUTH=off" in capfd.readouterr().err


async def test_the_openapi_document_declares_the_bearer_scheme_and_the_refusals(gateway: Gateway) -> None:
    document = (await gateway.http.get("/schema/openapi.json")).json()

    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token: `assay_<id>_<secret>`",
    }
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path in ("/healthz", "/readyz"):
                assert "security" not in operation
                continue
            assert operation["security"] == [{"bearer": []}], (method, path)
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
