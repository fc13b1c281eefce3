"""For an app Assay started, the probes go only to the ports Assay put it on: the app's own `.env` naming another
local port (a service of the machine's) does not widen the targets policy, so a redirect or a link of the app's to
that port reaches nothing there. Real dynamic analyzer process, real listeners on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from services.analyzers.base.server import AnalyzerServer
from services.analyzers.dynamic.analyzer import build_analyzer
from services.analyzers.running_app.targets import job_policy
from shared.operations.config import load_settings
from shared.operations.target_policy import TargetNotAllowed
from shared.wire.protocol import AnalyzeFrame
from shared.wire.tasks import TaskRef
from tests.support.analyzers import result_async, start_analyzer, stop
from tests.test_targets_policy import CountingServer, serving

MODEL = "started-app"
PROBING_TOOLS = [
    "reachability",
    "surface",
    "security-headers",
    "cookies",
    "cors",
    "sensitive-paths",
    "endpoints",
]


class LinkingApp(CountingServer):
    """The app: every page links (and one redirects) to the internal service's port."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.close()
            return
        self.requests += 1
        target = self.redirect_to or ""
        if head.startswith(b"GET /go"):
            answer = f"HTTP/1.1 302 Found\r\nLocation: {target}/admin\r\nContent-Length: 0\r\n\r\n"
        else:
            body = (
                f'<html><body><a href="{target}/admin">admin</a> <a href="/go">go</a>'
                f'<form action="{target}/api/users" method="post"><input name="q"></form>'
                f'<script src="{target}/app.js"></script></body></html>'
            )
            answer = (
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                f"Content-Length: {len(body)}\r\n\r\n{body}"
            )
        writer.write(answer.encode())
        await writer.drain()
        writer.close()


async def test_an_apps_env_naming_another_local_port_gets_no_probe_there(tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    async with serving(CountingServer()) as internal:
        app_dir = apps / MODEL / "app1"
        app_dir.mkdir(parents=True)
        # The app's .env names the internal service as its frontend; Assay started only its backend.
        (app_dir / ".env").write_text(f"FRONTEND_PORT={internal.port}\nBACKEND_PORT=1\n")
        async with serving(LinkingApp(redirect_to=internal.url)) as app:
            url, process = start_analyzer(
                "dynamic", tmp_path / "dynamic", apps_dir=apps, extra_env={"ASSAY_TARGET_ALLOW": ""}
            )
            try:
                frame = AnalyzeFrame(
                    id="task_0000000f5f50:dynamic",
                    task=TaskRef(
                        id="task_0000000f5f50", model_slug=MODEL, app_number=1, analysis_type="dynamic"
                    ),
                    tools=PROBING_TOOLS,
                    target_urls=[app.url],
                    app_ports={"BACKEND_PORT": app.port},
                )
                result = await result_async(url, frame, timeout_s=120)
            finally:
                stop(process)
    assert app.requests > 0  # the app Assay started was probed
    assert internal.connections == 0
    assert {run.tool for run in result.tools} == set(PROBING_TOOLS)


async def test_the_policy_of_an_app_assay_started_admits_only_its_ports(tmp_path: Path) -> None:
    """The job an analyzer builds from the frame: its targets policy refuses the port the app's .env names for
    the internal service, and admits the port Assay put the app on."""
    apps = tmp_path / "apps"
    app_dir = apps / MODEL / "app2"
    app_dir.mkdir(parents=True)
    (app_dir / ".env").write_text("FRONTEND_PORT=5432\nBACKEND_PORT=6379\nASSAY_CANARY_PORT=22\n")
    settings = load_settings({"ASSAY_VAR_DIR": str(tmp_path / "var"), "ASSAY_APPS_DIR": str(apps)})
    server = AnalyzerServer(build_analyzer(), settings)
    frame = AnalyzeFrame(
        id="task_0000000f5f51:dynamic",
        task=TaskRef(id="task_0000000f5f51", model_slug=MODEL, app_number=2, analysis_type="dynamic"),
        target_urls=["http://127.0.0.1:40001"],
        app_ports={"BACKEND_PORT": 40001, "ASSAY_CANARY_PORT": 40002},
    )

    async def send(_frame: msgspec.Struct) -> None:
        return None

    policy = job_policy(await server._job(frame, send))
    for url in ("http://127.0.0.1:40001/", "http://127.0.0.1:40002/"):
        policy.check(url)
    for port in (5432, 6379, 22):
        with pytest.raises(TargetNotAllowed):
            policy.check(f"http://127.0.0.1:{port}/")
