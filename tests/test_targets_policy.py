"""The targets policy: checks reach only loopback on the app's .env ports and what ASSAY_TARGET_ALLOW lists. The
gateway refuses other target URLs (422 naming the rule); the analyzers check again before connecting, so neither a
requested URL nor a redirect reaches anywhere else; the load ceilings hold whatever the options ask for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from services.analyzers.base.cpu_budget import CpuBudget
from services.analyzers.base.job import Job
from services.analyzers.base.runner import run_tool
from services.analyzers.dynamic.analyzer import build_analyzer
from services.analyzers.performance.load_tool import LoadTool
from services.analyzers.running_app.client import TargetRefused, http_client
from services.analyzers.running_app.targets import NOT_ALLOWED
from shared.jetstream.natsd import EmbeddedNats
from shared.operations.app_env import app_env
from shared.operations.config import Settings, load_settings
from shared.operations.target_policy import TargetNotAllowed, TargetPolicy, target_policy
from shared.wire.tasks import TaskRef
from tests.support.gateway import APP, MODEL, gateway_for, gateway_settings, migrate_database
from tests.support.ports import free_port

POLICY = TargetPolicy(
    app_ports=frozenset({5000, 3000}), allow=("staging.example.com:8443", "10.1.0.0/16", "[::1]:9")
)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5000/api",
        "http://localhost:3000",
        "http://127.0.0.2:5000/",  # all of 127/8 is loopback
        "http://[::1]:5000",
        "https://staging.example.com:8443/x",
        "http://10.1.2.3:1234",
        "http://[::1]:9/",
    ],
)
def test_the_policy_allows_loopback_app_ports_and_listed_targets(url: str) -> None:
    POLICY.check(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379",  # loopback, but not a port the app's .env names
        "http://localhost",  # port 80
        "http://example.com:5000/",
        "http://169.254.169.254/latest/meta-data",
        "https://staging.example.com/",  # listed with another port
        "http://127.0.0.1.nip.io:5000",  # a name is matched as written, whatever it resolves to
        "http://2130706433:5000",  # 127.0.0.1 in decimal: not an address the policy reads as loopback
        "http://10.2.0.1:80",
        "ftp://127.0.0.1:5000",
        "http://127.0.0.1:99999",
    ],
)
def test_the_policy_refuses_everything_else_naming_the_rule(url: str) -> None:
    with pytest.raises(TargetNotAllowed) as refused:
        POLICY.check(url)
    assert (
        "targets policy" in str(refused.value)
        or "only http and https" in str(refused.value)
        or "valid URL" in str(refused.value)
    )


def test_the_policy_comes_from_the_settings_and_the_apps_env() -> None:
    settings = load_settings({"ASSAY_TARGET_ALLOW": "db.internal, 192.168.0.0/24"})
    policy = target_policy(settings, {"BACKEND_PORT": "5001", "FRONTEND_PORT": "x"})
    assert policy == TargetPolicy(app_ports=frozenset({5001}), allow=("db.internal", "192.168.0.0/24"))
    assert policy.allows("http://db.internal:1") and policy.allows("http://192.168.0.9")
    assert not load_settings({}).target_allow  # default: loopback on the app's ports only


async def test_the_gateway_refuses_a_target_outside_the_policy(
    tmp_path: Path, nats_server: EmbeddedNats, database_url: str
) -> None:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url))
    (settings.apps_dir / MODEL / f"app{APP}" / ".env").write_text("BACKEND_PORT=5057\n")
    async with gateway_for(settings) as gateway:
        for url in ("http://example.com/", "http://127.0.0.1:22/", "http://169.254.169.254/"):
            response = await gateway.submit(analysis_type="dynamic", target_urls=[url])
            assert response.status_code == 422, response.text
            [error] = response.json()["errors"]
            assert error["field"] == "target_urls" and "ASSAY_TARGET_ALLOW" in error["reason"], error
        allowed = await gateway.submit(analysis_type="dynamic", target_urls=["http://127.0.0.1:5057/"])
        assert allowed.status_code == 202, allowed.text
        assert await gateway.requests_in_stream() == 1  # the refused ones were never queued


@dataclass
class CountingServer:
    """A minimal HTTP/1.1 server on loopback counting connections, requests and the most requests in flight;
    `redirect_to` makes every answer a 302 there."""

    redirect_to: str | None = None
    delay_s: float = 0.0
    port: int = field(default_factory=free_port)
    connections: int = 0
    requests: int = 0
    in_flight: int = 0
    most_in_flight: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while (await reader.readuntil(b"\r\n\r\n")) is not None:
                self.requests += 1
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                await asyncio.sleep(self.delay_s)
                self.in_flight -= 1
                if self.redirect_to:
                    head = f"HTTP/1.1 302 Found\r\nLocation: {self.redirect_to}\r\nContent-Length: 0\r\n\r\n"
                else:
                    head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
                writer.write(head.encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(server: CountingServer) -> AsyncIterator[CountingServer]:
    listening = await asyncio.start_server(server.handle, "127.0.0.1", server.port)
    try:
        yield server
    finally:
        listening.close()


async def _quiet(_tool: str, _stage: str, _message: str) -> None:
    return None


def job_for(tmp_path: Path, app_port: int, settings: Settings, target_urls: list[str], **options: Any) -> Job:
    """A job on an app whose .env names `app_port`; the policy is the default one (no ASSAY_TARGET_ALLOW)."""
    app = tmp_path / "apps" / MODEL / "app9"
    app.mkdir(parents=True, exist_ok=True)
    (app / ".env").write_text(f"BACKEND_PORT={app_port}\n")
    return Job(
        request_id="policy",
        task=TaskRef(id="task_00000000cafe", model_slug=MODEL, app_number=9, analysis_type="dynamic"),
        app_dir=app,
        app_env=app_env(app),
        target_urls=target_urls,
        options=options,
        deadline=time.monotonic() + 60,
        settings=settings,
        cpu_budget=CpuBudget(1),
        report=_quiet,
    )


def default_settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings({"ASSAY_VAR_DIR": str(tmp_path / "var"), **env})


async def test_a_redirect_to_another_host_is_not_followed(tmp_path: Path) -> None:
    """The app (on its .env port) redirects everything to a second port the policy does not allow: every dynamic
    check runs on the app, and the second server never sees a connection."""
    async with (
        serving(CountingServer()) as elsewhere,
        serving(CountingServer(redirect_to=elsewhere.url)) as app,
    ):
        job = job_for(tmp_path, app.port, default_settings(tmp_path), target_urls=[])
        outputs = [await run_tool(tool, job) for tool in build_analyzer().tools]
        assert app.requests > 0
        assert {output.run.tool: output.run.status for output in outputs}["reachability"] == "success"
        # Even a client told to follow redirects stops at the policy, before connecting.
        policy = target_policy(job.settings, job.app_env)
        async with http_client(policy) as client:
            with pytest.raises(TargetRefused, match="ASSAY_TARGET_ALLOW"):
                await client.get(app.url + "/", follow_redirects=True)
        assert elsewhere.connections == 0


async def test_the_analyzer_does_not_touch_a_requested_target_outside_the_policy(tmp_path: Path) -> None:
    """A direct client asking for another port (a port scan through the reachability check) gets every check
    skipped with the rule, and nothing connects there."""
    async with serving(CountingServer()) as other:
        job = job_for(tmp_path, free_port(), default_settings(tmp_path), target_urls=[other.url])
        outputs = [await run_tool(tool, job) for tool in build_analyzer().tools]
        load = await run_tool(LoadTool(), job)
    for output in [*outputs, load]:
        assert output.run.status == "skipped", output.run
        assert output.run.reason and output.run.reason.startswith(f"{NOT_ALLOWED}: "), output.run.reason
    assert other.connections == 0


async def test_the_load_ceilings_hold_whatever_the_options_say(tmp_path: Path) -> None:
    settings = default_settings(
        tmp_path,
        ASSAY_LOAD_MAX_REQUESTS="30",
        ASSAY_LOAD_MAX_CONCURRENCY="3",
        ASSAY_LOAD_MAX_DURATION_S="20",
    )
    async with serving(CountingServer(delay_s=0.01)) as app:
        asked = {
            "requests": 1_000_000,
            "concurrency": 512,
            "duration_s": 3600,
            "paths": ["/a", "/b", "/c", "/d"],
        }
        job = job_for(tmp_path, app.port, settings, target_urls=[app.url], load=asked)
        output = await run_tool(LoadTool(), job)
    assert output.run.status == "success", output.run
    reachability_probe = 1
    assert app.requests - reachability_probe <= 30
    assert app.most_in_flight <= 3
    ran = msgspec.convert(output.metrics["options"], dict[str, Any])
    assert (ran["requests"], ran["concurrency"], ran["duration_s"]) == (7, 3, 20)  # 30 // 4 URLs
    assert output.metrics["ceilings"] == {"requests": 30, "concurrency": 3, "duration_s": 20.0}
    # Options below the ceilings are kept as asked.
    async with serving(CountingServer()) as app2:
        job = job_for(
            tmp_path, app2.port, settings, target_urls=[app2.url], load={"requests": 2, "concurrency": 1}
        )
        output = await run_tool(LoadTool(), job)
    assert output.metrics["options"]["requests"] == 2 and output.metrics["options"]["concurrency"] == 1


async def test_http_client_refuses_before_connecting(tmp_path: Path) -> None:
    async with serving(CountingServer()) as other:
        async with http_client(TargetPolicy(app_ports=frozenset())) as client:
            with pytest.raises(httpx.TransportError, match="outside the targets policy"):
                await client.get(other.url)
    assert other.connections == 0
